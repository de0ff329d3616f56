//! The bare baseline for the status check's load benchmark (scripts/bench-status.sh): axum
//! on tokio answering every path with a fixed "hello", nothing else.
//!
//! `cargo run --release -p kjp-server --example hello -- 8081`

use axum::Router;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = match std::env::args().nth(1) {
        Some(p) => p.parse().map_err(|e| std::io::Error::other(format!("port {p:?}: {e}")))?,
        None => 8081,
    };
    let app = Router::new().fallback(|| async { "hello" });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("hello at http://{}/", listener.local_addr()?);
    axum::serve(listener, app).await
}
