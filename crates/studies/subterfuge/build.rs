//! Rebuilds the crate when a built-in environment changes: `include_dir!` embeds `envs/`,
//! but cargo does not know the macro read it.
fn main() {
    println!("cargo:rerun-if-changed=envs");
}
