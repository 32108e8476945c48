//! End to end over localhost: `silirep link serve` in one process, `silirep measure --peer`
//! in another, as on two machines. The peer is killed in the middle of a run: every finished
//! measurement is kept and the rest are recorded as failures naming the peer.

use silirep_core::schema::{RunFile, RunStatus, VerificationStatus};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

struct Peer(Child);

impl Peer {
    fn start(port: u16) -> Peer {
        let child = Command::new(env!("CARGO_BIN_EXE_silirep"))
            .args(["link", "serve", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait until it accepts connections.
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Peer(child)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn measure(out: &Path, port: u16, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_silirep"))
        .args(["measure", "--backend", "cpu", "--kernels", "interconnect"])
        .args([
            "--peer",
            &format!("127.0.0.1:{port}"),
            "--peer-timeout",
            "2",
        ])
        .arg("--out")
        .arg(out)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn run_file(out: &Path) -> Option<(PathBuf, RunFile)> {
    let machines = std::fs::read_dir(out.join("raw")).ok()?;
    for machine in machines {
        for file in std::fs::read_dir(machine.ok()?.path()).ok()? {
            let path = file.ok()?.path();
            let text = std::fs::read_to_string(&path).ok()?;
            if let Ok(run) = serde_json::from_str::<RunFile>(&text) {
                return Some((path, run));
            }
        }
    }
    None
}

#[test]
fn a_quick_link_run_measures_and_verifies_every_configuration() {
    let port = free_port();
    let _peer = Peer::start(port);
    let out = tempfile::tempdir().unwrap();
    let child = measure(
        out.path(),
        port,
        &[
            "--suite",
            "quick",
            "--max-time",
            "0.3",
            "--warmup-time",
            "0",
        ],
    );
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (_, run) = run_file(out.path()).unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(run.measurements.len(), 6);
    for m in &run.measurements {
        assert!(m.error.is_none(), "{:?}", m.error);
        assert_eq!(m.verification.status, VerificationStatus::Passed);
        assert!(!m.samples_s.is_empty());
        let topology = m.topology.as_ref().expect("link recorded");
        assert_eq!(topology.links[0].label, "TCP over loopback");
    }
}

#[test]
fn a_peer_killed_mid_run_keeps_every_finished_measurement() {
    let port = free_port();
    let mut peer = Peer::start(port);
    let out = tempfile::tempdir().unwrap();
    let child = measure(
        out.path(),
        port,
        &[
            "--suite",
            "standard",
            "--max-time",
            "0.3",
            "--warmup-time",
            "0",
        ],
    );
    // Kill the peer once the first configuration is in the file.
    let started = Instant::now();
    loop {
        if let Some((_, run)) = run_file(out.path())
            && !run.measurements.is_empty()
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "nothing measured"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = peer.0.kill();
    let _ = peer.0.wait();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let (_, run) = run_file(out.path()).unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    let finished = run
        .measurements
        .iter()
        .filter(|m| m.error.is_none())
        .count();
    let failed: Vec<_> = run
        .measurements
        .iter()
        .filter_map(|m| m.error.as_ref())
        .collect();
    assert!(finished >= 1, "the first measurement was lost");
    assert!(!failed.is_empty(), "the dead peer went unnoticed");
    let peer_name = format!("peer 127.0.0.1:{port}");
    assert!(
        failed.iter().all(|e| e.message.contains(&peer_name)),
        "{failed:?}"
    );
    // Every configuration of the standard suite is in the file: measured or failed.
    let expected = silirep_link::suite::configurations(silirep_core::Suite::Standard).len();
    assert_eq!(run.measurements.len(), expected, "{stderr}");
}

#[test]
fn bad_peer_arguments_are_refused_before_anything_runs() {
    let out = tempfile::tempdir().unwrap();
    for (peer, expected) in [
        ("localhost", "expected HOST:PORT"),
        ("localhost:99999", "expected HOST:PORT"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_silirep"))
            .args(["measure", "--backend", "cpu", "--peer", peer, "--out"])
            .arg(out.path())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{stderr}");
    }
    assert!(run_file(out.path()).is_none(), "a file was written");
}
