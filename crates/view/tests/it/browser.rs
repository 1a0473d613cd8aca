//! The viewer in a real browser (headless Chromium over the DevTools protocol): open the
//! run list, click a run, read its table and figure, search by typing into the filter,
//! open a sample by clicking it, check that a model's `<script>` shows as text and never
//! runs, reload a permalink, and watch a run in progress update. Screenshots go to
//! `target/tmp/view-*.png` to be looked at.
//!
//! Skipped, with a message, only where no Chromium is installed (`scripts/test` installs
//! Debian's `chromium-headless-shell`).

use std::os::unix::process::CommandExt;

use crate::cdp::{find_browser, Browser};
use crate::fixture::{self, RUN, SAMPLES};

fn shot(b: &mut Browser, name: &str) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::write(dir.join(format!("view-{name}.png")), b.screenshot()).unwrap();
}

fn count(b: &mut Browser, selector: &str) -> u64 {
    let sel = serde_json::to_string(selector).unwrap();
    b.eval(&format!("document.querySelectorAll({sel}).length"))
        .as_u64()
        .unwrap()
}

fn text(b: &mut Browser, selector: &str) -> String {
    let sel = serde_json::to_string(selector).unwrap();
    b.eval(&format!("document.querySelector({sel}).textContent"))
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::print_stderr)] // the one message a skipped test gives
async fn browse_search_open_and_stay_safe() {
    let Some(exe) = find_browser() else {
        eprintln!(
            "SKIPPED: no Chromium found (set SHAMMIE_CHROMIUM or install Debian's chromium-headless-shell; scripts/test does)"
        );
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let addr = crate::api::serve(d.path()).await;
    let base = format!("http://{addr}/");
    let run_dir = d.path().join(RUN);
    tokio::task::spawn_blocking(move || {
        let mut b = Browser::launch(&exe, 1280, 900);

        // The run list.
        b.navigate(&base);
        b.wait_for("document.querySelectorAll('#runs tr.run-row').length === 2");
        shot(&mut b, "runs");
        // A run started elsewhere appears in the open list by itself.
        let new_run = run_dir.parent().unwrap().join("20261206T000200Z-demo-new");
        std::fs::create_dir_all(&new_run).unwrap();
        std::fs::copy(run_dir.join("run.json"), new_run.join("run.json")).unwrap();
        b.wait_for("document.querySelectorAll('#runs tr.run-row').length === 3");

        // Click the run: its table, figure and samples.
        b.click(&format!("tr.run-row[data-run=\"{RUN}\"] a"));
        b.wait_for("document.querySelector('#sample-list')");
        assert_eq!(count(&mut b, "#sample-list tr.sample-row"), SAMPLES as u64);
        let table = text(&mut b, "section.result-table[data-name=accuracy]");
        assert!(table.contains("0.400 [0.200, 0.610] n=13"), "{table}");
        b.wait_for("document.querySelector('figure img').complete && document.querySelector('figure img').naturalWidth === 200");
        shot(&mut b, "run");

        // Search by typing into the filter and pressing Enter.
        b.click("#filters input[name=q]");
        b.type_text("question NUMBER 17");
        b.press_enter();
        b.wait_for("document.querySelectorAll('#sample-list tr.sample-row').length === 1");
        assert_eq!(
            b.eval("document.querySelector('#sample-list tr.sample-row').dataset.id"),
            "q17/cot"
        );
        assert!(b.eval("location.hash").as_str().unwrap().contains("q=question"));

        // Failed samples only, through the select.
        b.eval("(() => { const s = document.querySelector('#filters select[name=error]'); s.value = 'only'; document.querySelector('#filters input[name=q]').value = ''; })()");
        b.click("#filters button");
        b.wait_for(&format!(
            "document.querySelectorAll('#sample-list tr.sample-row').length === {}",
            (0..SAMPLES).filter(|&i| fixture::failed(i)).count()
        ));

        // The sample whose model wrote a script: shown as text, never run.
        b.navigate(&format!("{base}#/run/{RUN}?q=__pwned"));
        b.wait_for("document.querySelectorAll('#sample-list tr.sample-row').length === 1");
        b.click("#sample-list tr.sample-row a");
        b.wait_for("document.querySelector('#transcript')");
        let shown = text(&mut b, "#transcript");
        assert!(shown.contains(fixture::SCRIPT), "{shown}");
        assert_eq!(count(&mut b, "#transcript script, #transcript img"), 0);
        assert_eq!(b.eval("typeof window.__pwned"), "undefined");
        // Top-k logprobs on hover (the token's title).
        let title = b.eval("document.querySelector('.tok').title");
        assert!(title.as_str().unwrap().contains("\"A\"  0.0821"), "{title}");
        assert!(shown.contains("tool calc") && shown.contains("note for sample 5"));
        shot(&mut b, "sample");

        // The permalink opens the same sample after a reload.
        let here = b.eval("location.href").as_str().unwrap().to_string();
        b.navigate("about:blank");
        b.navigate(&here);
        b.wait_for("document.querySelector('#sample-title')");
        assert_eq!(text(&mut b, "#sample-title"), "q05/cot");

        // A run in progress (its lock names a live shammie process) updates by itself.
        let mut writer = std::process::Command::new("sleep")
            .arg0("shammie-writer")
            .arg("60")
            .spawn()
            .unwrap();
        std::fs::write(run_dir.join(".lock"), format!("{}\n", writer.id())).unwrap();
        b.navigate(&format!("{base}#/run/{RUN}"));
        b.wait_for("document.getElementById('live').textContent.includes('live')");
        let mut late = fixture::record(1);
        late.id = "late/arrival".into();
        let mut log = std::fs::read_to_string(run_dir.join("samples.jsonl")).unwrap();
        log.push_str(&serde_json::to_string(&late).unwrap());
        log.push('\n');
        std::fs::write(run_dir.join("samples.jsonl"), log).unwrap();
        b.wait_for("document.querySelector('tr.sample-row[data-id=\"late/arrival\"]')");
        let _ = writer.kill();
        let _ = writer.wait();
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::print_stderr)] // the one message a skipped test gives
async fn the_cluster_explorer_shows_the_tree_and_the_map_together() {
    let Some(exe) = find_browser() else {
        eprintln!("SKIPPED: no Chromium found (set SHAMMIE_CHROMIUM or install Debian's chromium-headless-shell; scripts/test does)");
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let viewer = shammie_view::Viewer::bind(vec![fixture::clusters(d.path())], 0)
        .await
        .unwrap();
    let base = format!("http://{}/", viewer.addr());
    tokio::spawn(viewer.serve());
    let run = fixture::CLUSTERS;
    tokio::task::spawn_blocking(move || {
        let mut b = Browser::launch(&exe, 1280, 900);
        // From the run page, the link to the explorer.
        b.navigate(&format!("{base}#/run/{run}"));
        b.wait_for("document.querySelector('#explore')");
        b.click("#explore");
        b.wait_for("document.querySelector('#tree') && document.querySelector('#map-svg')");
        // The tree: two categories, three shown clusters, one withheld counted.
        assert_eq!(count(&mut b, "#tree details.node[data-level='1']"), 2);
        assert_eq!(count(&mut b, "#tree details.node[data-level='0']"), 3);
        let software = text(&mut b, "#node-L1-1");
        assert!(software.contains("16 conversations (40.0%)"), "{software}");
        assert!(software.contains("1 more cluster (4 conversations) withheld"), "{software}");
        // Its drill-down: the concerning ratings (a bar per rating, the tallest full) and
        // languages; a cluster without facets shows none.
        let facets = text(&mut b, "#node-L1-1 > .facets");
        assert!(facets.contains("concerning 1.50 [1.10, 1.90] (n = 16)"), "{facets}");
        assert!(facets.contains("10 · 4 · 2 · 0 · 0"), "{facets}");
        assert!(facets.contains("languages: English 75%, <b>French</b> 25%"), "{facets}");
        assert_eq!(count(&mut b, "#node-L1-1 > .facets .bar"), 5);
        assert_eq!(b.eval("document.querySelector('#node-L1-1 > .facets .bar').style.height"), "14px");
        assert_eq!(count(&mut b, "#node-L1-0 > .facets"), 0);
        b.eval("document.querySelector('#node-L1-1').open = true");
        shot(&mut b, "explorer-facets");
        // The map: one dot per conversation of a shown cluster, one label per cluster.
        assert_eq!(count(&mut b, "#map-svg circle.dot"), 36);
        assert_eq!(count(&mut b, "#map-svg text.map-label"), 3);
        // A cluster name with markup is text, never HTML.
        assert_eq!(b.eval("typeof window.__pwned"), "undefined");
        assert_eq!(count(&mut b, "#tree img, #map img"), 0);
        shot(&mut b, "explorer");

        // Click a category in the tree: its clusters' dots stay, the others fade.
        b.click("#node-L1-1 > summary");
        b.wait_for("document.querySelector('#node-L1-1.selected')");
        assert_eq!(count(&mut b, "#map-svg circle.dot:not(.faded)"), 12);
        assert!(b.eval("location.hash").as_str().unwrap().contains("node=L1-1"));
        // Click a label on the map: its cluster is selected and its path in the tree open.
        b.eval("document.querySelector('#map-svg text.map-label[data-cluster=\"L0-0\"]').dispatchEvent(new MouseEvent('click', {bubbles: true}))");
        b.wait_for("document.querySelector('#node-L0-0.selected')");
        assert_eq!(b.eval("document.querySelector('#node-L1-0').open"), true);
        assert_eq!(count(&mut b, "#map-svg circle.dot:not(.faded)"), 14);
        // Zoom in with the wheel: the view box shrinks.
        let before = b.eval("document.querySelector('#map-svg').viewBox.baseVal.width").as_f64().unwrap();
        b.eval("document.querySelector('#map-svg').dispatchEvent(new WheelEvent('wheel', {deltaY: -100, clientX: 900, clientY: 400, bubbles: true, cancelable: true}))");
        let after = b.eval("document.querySelector('#map-svg').viewBox.baseVal.width").as_f64().unwrap();
        assert!((after / before - 0.8).abs() < 1e-5, "{before} → {after}");
        shot(&mut b, "explorer-selected");
        // A permalink opens with the node selected.
        let here = b.eval("location.href").as_str().unwrap().to_string();
        b.navigate("about:blank");
        b.navigate(&here);
        b.wait_for("document.querySelector('#node-L0-0.selected')");
    })
    .await
    .unwrap();
}
