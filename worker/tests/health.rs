//! The health endpoints of a real `proofline-worker` process (on a real RabbitMQ)
//! cannot be exhausted: a slow client does not block others, connections beyond the
//! cap are closed at once, and idle ones are closed after the read timeout.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::WorkerProcess;
use proofline_tests::rabbit::RabbitBroker as Broker;

/// The server's connection cap and header read timeout (`health::Limits::default`).
const CAP: usize = 64;
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The health address the worker logged (`health on http://ADDR`).
fn health_addr(worker: &WorkerProcess) -> SocketAddr {
    let log = worker.log();
    let at =
        log.find("health on http://").expect("worker logs its health address") + "health on http://".len();
    let addr: String = log[at..].chars().take_while(|c| !c.is_whitespace() && *c != ',').collect();
    addr.parse().unwrap_or_else(|e| panic!("{addr:?}: {e}"))
}

/// `GET path` on a fresh connection: status code, or `None` if refused or closed.
fn get(addr: SocketAddr, path: &str, timeout: Duration) -> Option<u16> {
    let mut conn = TcpStream::connect_timeout(&addr, timeout).ok()?;
    conn.set_read_timeout(Some(timeout)).unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n");
    conn.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    conn.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

/// Whether the server closes `conn` (EOF or reset) within `within`.
fn closed_within(mut conn: &TcpStream, within: Duration) -> bool {
    conn.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 256];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // a 408 or similar before the close
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return false;
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn a_slow_client_does_not_block_another_request_and_is_cut_off() {
    let broker = Broker::start_new();
    let store = tempfile::tempdir().unwrap();
    let worker = WorkerProcess::spawn("h", &broker.amqp_uri(), store.path(), &["--lanes", "1"]);
    let addr = health_addr(&worker);
    // A slow-loris: half a request line, then one byte every 200 ms.
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.write_all(b"GET /livez HTTP/1.1\r\nhost: sl").unwrap();
    let trickle = {
        let mut slow = slow.try_clone().unwrap();
        std::thread::spawn(move || {
            for _ in 0..100 {
                std::thread::sleep(Duration::from_millis(200));
                if slow.write_all(b"o").is_err() {
                    return;
                }
            }
        })
    };
    let started = Instant::now();
    assert_eq!(get(addr, "/livez", Duration::from_secs(2)), Some(200));
    assert_eq!(get(addr, "/readyz", Duration::from_secs(2)), Some(200));
    assert!(started.elapsed() < Duration::from_secs(2), "answered beside the slow client");
    // The slow client never completes its head: it is closed after the read timeout.
    assert!(closed_within(&slow, READ_TIMEOUT + Duration::from_secs(5)), "slow client still open");
    trickle.join().unwrap();
}

#[test]
fn connections_beyond_the_cap_are_closed_and_the_server_recovers() {
    let broker = Broker::start_new();
    let store = tempfile::tempdir().unwrap();
    let worker = WorkerProcess::spawn("h", &broker.amqp_uri(), store.path(), &["--lanes", "1"]);
    let addr = health_addr(&worker);
    // Silent clients: twice the cap.
    let idle: Vec<TcpStream> = (0..2 * CAP).map(|_| TcpStream::connect(addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(500));
    let closed_at_once = idle.iter().filter(|c| closed_within(c, Duration::from_millis(50))).count();
    assert!(
        closed_at_once >= CAP,
        "connections beyond the cap of {CAP} are closed at once, not queued: {closed_at_once} of {}",
        idle.len()
    );
    // The rest are cut off by the read timeout; then the server answers again.
    let until = Instant::now() + READ_TIMEOUT + Duration::from_secs(10);
    let answered = loop {
        if let Some(code) = get(addr, "/livez", Duration::from_secs(1)) {
            break Some(code);
        }
        if Instant::now() > until {
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(answered, Some(200), "the server answers again once idle clients are cut off");
    let still_open = idle.iter().filter(|c| !closed_within(c, Duration::from_millis(50))).count();
    assert_eq!(still_open, 0, "every silent client was closed");
    drop(worker);
}
