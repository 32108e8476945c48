//! The HTML report renders, with its charts, in a real browser (headless Chromium).
//!
//! CI installs Debian's `chromium` and sets `SILIREP_REQUIRE_BROWSER=1`, which turns a
//! missing browser into a failure; elsewhere the test says it was skipped.

use std::path::{Path, PathBuf};
use std::process::Command;

const SEED: &str = "results/imported/mac-ml-benchmark";

fn browser() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|p| p.join(name))
                    .find(|p| p.is_file())
            })
        })
}

fn headless(browser: &Path, profile: &Path) -> Command {
    let mut cmd = Command::new(browser);
    // Flags for a sandboxed CI machine without network or GPU.
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    cmd
}

#[test]
fn html_report_renders_with_its_charts_in_chromium() {
    let Some(browser) = browser() else {
        assert!(
            std::env::var("SILIREP_REQUIRE_BROWSER").is_err(),
            "SILIREP_REQUIRE_BROWSER is set but no chromium is installed"
        );
        eprintln!("skipped: no chromium on PATH (CI installs it)");
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_silirep"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["report", SEED, "-o"])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let page = out.path().join("index.html");
    let url = format!("file://{}", page.display());

    // The DOM as the browser built it: every chart is an inline SVG with its title.
    let profile = tempfile::tempdir().unwrap();
    let dom = headless(&browser, profile.path())
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout);
    let svg_count = dom.matches("<svg").count();
    assert!(
        svg_count >= 4,
        "expected the charts inlined, found {svg_count} <svg> elements"
    );
    assert!(dom.contains("Roofline"), "roofline chart missing");
    assert!(dom.contains("Apple M5") && dom.contains("Apple M4 Pro"));

    // A screenshot: the page is not blank, and the charts' colours are on it.
    let shot = out.path().join("shot.png");
    let profile = tempfile::tempdir().unwrap();
    let result = headless(&browser, profile.path())
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--window-size=1280,3000")
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        shot.is_file(),
        "no screenshot: {}",
        String::from_utf8_lossy(&result.stderr)
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let pixels = &buf[..info.buffer_size()];
    let mut non_white = 0usize;
    let mut colourful = 0usize;
    for px in pixels.chunks(channels) {
        let (r, g, b) = (px[0] as i32, px[1] as i32, px[2] as i32);
        if r < 245 || g < 245 || b < 245 {
            non_white += 1;
        }
        // Saturated pixels come from chart series, not from black text on white.
        if (r - g).abs().max((g - b).abs()).max((r - b).abs()) > 60 {
            colourful += 1;
        }
    }
    let total = pixels.len() / channels;
    assert!(
        non_white * 50 > total,
        "page looks blank: {non_white} of {total} pixels inked"
    );
    assert!(
        colourful > 2000,
        "no chart colours on the page ({colourful} saturated pixels)"
    );
}
