//! A local HTTPS server standing for the API server or the kubelet: a certificate for
//! 127.0.0.1 signed by a CA that each run generates (rcgen), rustls, and a minimal
//! HTTP/1.1 responder on a std thread that answers every GET with the same status and
//! body (both changeable while it runs) and records each request's path and
//! `Authorization` header.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// One request as received.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The request target (`/api/v1/pods?...`).
    pub path: String,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
}

/// The server; it lives until the test binary exits.
pub struct Server {
    pub port: u16,
    /// The CA's certificate, PEM: what `ca_file` holds.
    pub ca_pem: String,
    answer: Arc<Mutex<(u16, Vec<u8>)>>,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Server {
    /// Starts it, answering `body` with status 200.
    pub fn start(body: &[u8]) -> Server {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        (ca_params.distinguished_name).push(DnType::CommonName, "alumet test cluster CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = vec![
            SanType::IpAddress([127, 0, 0, 1].into()),
            SanType::DnsName("localhost".try_into().unwrap()),
        ];
        let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], private)
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let server = Server {
            port: listener.local_addr().unwrap().port(),
            ca_pem: ca.pem(),
            answer: Arc::new(Mutex::new((200, body.to_vec()))),
            requests: Arc::default(),
        };
        let (config, answer, requests) = (
            Arc::new(config),
            Arc::clone(&server.answer),
            Arc::clone(&server.requests),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let conn = rustls::ServerConnection::new(Arc::clone(&config)).unwrap();
                let tls = rustls::StreamOwned::new(conn, stream);
                // A failed handshake (a client that does not trust the CA) ends that
                // connection only.
                let _ = serve(tls, &answer, &requests);
            }
        });
        server
    }

    /// Answers `status` and `body` from now on.
    pub fn answer(&self, status: u16, body: &[u8]) {
        *self.answer.lock().unwrap() = (status, body.to_vec());
    }

    /// The requests so far.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// Waits (up to a minute, on a loaded machine) until at least `n` requests came.
    pub fn wait_requests(&self, n: usize) -> Vec<Request> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = self.requests();
            if r.len() >= n || Instant::now() > deadline {
                return r;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Writes the CA's certificate to `path`.
    pub fn write_ca(&self, path: &Path) {
        std::fs::write(path, &self.ca_pem).unwrap();
    }
}

type Tls = rustls::StreamOwned<rustls::ServerConnection, std::net::TcpStream>;

fn serve(
    tls: Tls,
    answer: &Mutex<(u16, Vec<u8>)>,
    requests: &Mutex<Vec<Request>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(tls);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split(' ').nth(1).unwrap_or_default().to_owned();
    let mut authorization = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("authorization") {
                authorization = Some(value.trim().to_owned());
            }
        }
    }
    requests.lock().unwrap().push(Request {
        path,
        authorization,
    });
    let (status, body) = answer.lock().unwrap().clone();
    let mut tls = reader.into_inner();
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes())?;
    tls.write_all(&body)?;
    tls.flush()?;
    tls.conn.send_close_notify();
    tls.flush()
}
