//! Connection hardening, black box: slow clients are cut off, large bodies refused.

mod common;
use common::*;

use std::time::{Duration, Instant};

use kjp_server::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn quick(header_timeout: Duration) -> Config {
    Config {
        rate_per_minute: 0,
        header_timeout,
        request_timeout: Duration::from_secs(1),
        ..Config::default()
    }
}

/// Reads until the server closes; the time it took and what was sent before.
async fn until_closed(stream: &mut TcpStream, limit: Duration) -> (Duration, Vec<u8>) {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(limit, stream.read(&mut buf)).await {
            Err(_) => panic!("still open after {limit:?}; received {:?}", String::from_utf8_lossy(&got)),
            Ok(Ok(0)) | Ok(Err(_)) => return (start.elapsed(), got),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn slowloris_half_a_request_line_is_disconnected_after_the_header_timeout() {
    let app = spawn_with(true, quick(Duration::from_secs(1))).await;
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    stream.write_all(b"GET /api/v1/sta").await.expect("write");
    let (waited, got) = until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(waited >= Duration::from_millis(800), "closed too early: {waited:?}");
    assert!(waited < Duration::from_secs(3), "closed too late: {waited:?}");
    let got = String::from_utf8_lossy(&got);
    assert!(got.is_empty() || got.starts_with("HTTP/1.1 408"), "{got}");
    // The server still answers others.
    let res = app.client.get(app.url("/healthz")).send().await.expect("healthz");
    assert_eq!(res.status().as_u16(), 200);
}

#[tokio::test]
async fn a_connection_that_sends_nothing_or_stays_idle_is_closed() {
    let app = spawn_with(true, quick(Duration::from_secs(1))).await;
    let mut silent = TcpStream::connect(app.addr).await.expect("connect");
    let (waited, _) = until_closed(&mut silent, Duration::from_secs(5)).await;
    assert!(waited < Duration::from_secs(3), "{waited:?}");

    // Kept alive after an answer, then idle: closed after the same timeout.
    let mut idle = TcpStream::connect(app.addr).await.expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("write");
    let (waited, got) = until_closed(&mut idle, Duration::from_secs(5)).await;
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"), "{got:?}");
    assert!(waited >= Duration::from_millis(800) && waited < Duration::from_secs(3), "{waited:?}");
}

#[tokio::test]
async fn a_body_that_trickles_in_gets_408() {
    let app = spawn_with(true, quick(Duration::from_secs(5))).await;
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    let head = "POST /cek HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nnik=31";
    stream.write_all(head.as_bytes()).await.expect("write");
    let (waited, got) = until_closed(&mut stream, Duration::from_secs(5)).await;
    let got = String::from_utf8_lossy(&got);
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
}

#[tokio::test]
async fn a_body_over_the_limit_gets_413_and_a_huge_head_431() {
    let app = spawn(true, 0).await;
    let big = "x".repeat(Config::default().body_limit + 1);
    let (code, _) = app.check(&[("nik", RECIPIENT), ("birth_date", RECIPIENT_BIRTH), ("pad", &big)]).await;
    assert_eq!(code, 413);
    // A normal form still works on the same server.
    let (code, body) = app
        .check(&[("nik", RECIPIENT), ("birth_date", RECIPIENT_BIRTH), ("year", "2025"), ("stage", "1")])
        .await;
    assert_eq!(code, 200, "{body}");

    let res = app
        .client
        .get(app.url("/healthz"))
        .header("x-padding", "y".repeat(64 * 1024))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status().as_u16(), 431);
}

#[tokio::test]
async fn shutdown_closes_idle_keep_alive_connections_and_returns() {
    // A long header timeout: it is the shutdown, not the timeout, that must close it.
    let app = spawn_with(true, quick(Duration::from_secs(60))).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(kjp_server::serve(listener, app.state.clone(), async move {
        let _ = stopped.await;
    }));
    let mut idle = TcpStream::connect(addr).await.expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("write");
    let mut buf = [0u8; 12];
    idle.read_exact(&mut buf).await.expect("answer");
    assert_eq!(&buf, b"HTTP/1.1 200");

    stop.send(()).expect("stop");
    let done = tokio::time::timeout(Duration::from_secs(5), server).await;
    done.expect("serve returns after shutdown").expect("join").expect("serve");
    let (waited, _) = until_closed(&mut idle, Duration::from_secs(2)).await;
    assert!(waited < Duration::from_secs(2));
    assert!(TcpStream::connect(addr).await.is_err(), "no longer listening");
}
