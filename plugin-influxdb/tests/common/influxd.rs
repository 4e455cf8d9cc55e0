//! Debian's `influxd` (1.x), started on free loopback ports with a temporary directory.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{wait_until, TempDir};

/// Whether `influxd` can run here: under CI its absence fails the test (CI installs it);
/// elsewhere the skip is shown on the terminal.
pub fn available(test: &str) -> bool {
    use alumet::test_util::skip::{missing_tool, should_run};
    should_run(test, missing_tool("influxd", "influxdb"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `influxd`; killed on drop.
pub struct Influxd {
    dir: TempDir,
    config: PathBuf,
    pub port: u16,
    child: Option<Child>,
}

impl Influxd {
    /// Starts a server with an empty data directory and creates database `db`.
    pub fn start(name: &str, db: &str) -> Influxd {
        let dir = TempDir::new(name);
        let (port, rpc) = (free_port(), free_port());
        let config = dir.path().join("influxdb.conf");
        std::fs::write(&config, config_text(dir.path(), port, rpc)).unwrap();
        let mut server = Influxd {
            dir,
            config,
            port,
            child: None,
        };
        server.restart();
        server.query("CREATE DATABASE \"".to_owned() + db + "\"", None);
        server
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts the server again on the same directory and port (after [`Influxd::kill`]).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::File::create(self.dir.path().join("influxd.log")).unwrap();
        let child = Command::new("influxd")
            .arg("-config")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let ping = format!("{}/ping", self.url());
        let up = wait_until(Duration::from_secs(30), || {
            ureq::get(&ping)
                .timeout(Duration::from_secs(1))
                .call()
                .is_ok()
        });
        assert!(up, "influxd did not answer on port {}", self.port);
    }

    /// Kills the server (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Runs an InfluxQL query (`epoch=ns`) and returns the JSON answer.
    pub fn query(&self, q: String, db: Option<&str>) -> serde_json::Value {
        let mut request = ureq::post(&format!("{}/query", self.url()))
            .timeout(Duration::from_secs(10))
            .query("epoch", "ns");
        if let Some(db) = db {
            request = request.query("db", db);
        }
        let response = request.send_form(&[("q", &q)]).unwrap();
        serde_json::from_str(&response.into_string().unwrap()).unwrap()
    }

    /// The rows of `SELECT * FROM "measurement"`: column names and values.
    pub fn select_all(
        &self,
        db: &str,
        measurement: &str,
    ) -> (Vec<String>, Vec<Vec<serde_json::Value>>) {
        let escaped = measurement.replace('\\', "\\\\").replace('"', "\\\"");
        let answer = self.query(format!("SELECT * FROM \"{escaped}\""), Some(db));
        let series = &answer["results"][0]["series"][0];
        let columns = series["columns"]
            .as_array()
            .map(|c| c.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default();
        let rows = series["values"]
            .as_array()
            .map(|r| r.iter().map(|v| v.as_array().unwrap().clone()).collect())
            .unwrap_or_default();
        (columns, rows)
    }
}

impl Drop for Influxd {
    fn drop(&mut self) {
        self.kill();
    }
}

fn config_text(dir: &Path, port: u16, rpc: u16) -> String {
    let d = dir.display();
    format!(
        r#"reporting-disabled = true
bind-address = "127.0.0.1:{rpc}"
[meta]
  dir = "{d}/meta"
[data]
  dir = "{d}/data"
  wal-dir = "{d}/wal"
  query-log-enabled = false
[coordinator]
  write-timeout = "10s"
[http]
  bind-address = "127.0.0.1:{port}"
  log-enabled = false
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
[subscriber]
  enabled = false
"#
    )
}
