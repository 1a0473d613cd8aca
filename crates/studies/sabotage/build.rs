//! Rebuilds the crate when a built-in game changes: `include_dir!` embeds `games/`, but
//! cargo does not know the macro read it.
fn main() {
    println!("cargo:rerun-if-changed=games");
}
