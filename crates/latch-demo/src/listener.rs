//! Serving connections with bounds a slow or greedy client cannot lift (A8).
//!
//! `axum::serve` sets no header read timeout and no connection limit: a
//! client that opens connections and never finishes its headers kept them
//! for as long as it liked, and 300 of them (with a modest file-descriptor
//! limit) made `/healthz` time out for 65 s. Here every connection must send
//! a complete request head within the header timeout (also between requests
//! on a kept-alive connection) and the whole request body within the body
//! timeout (a body trickled a byte at a time was held open for good), at
//! most `max_connections` are open at once (fewer than the process may open
//! files), and one client address holds at most `max_per_client` of them; a
//! connection over a limit is closed as soon as it is accepted, so it holds
//! nothing. When every place is taken, a newcomer gets the place of the
//! oldest connection of the client that holds the most or, when no client
//! holds more than the newcomer would, of the connection that has waited
//! longest on its client (for a request head, a body, or to read a response):
//! see `Counts::admit`.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::limits::client_network;

/// The bounds of [`serve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// How long a client has to send a complete request head.
    pub header_timeout: Duration,
    /// How long a client has to send a whole request body, from the request's
    /// start.
    pub body_timeout: Duration,
    /// Connections open at once, in all.
    pub max_connections: usize,
    /// Connections open at once from one client address (IPv6: one /64).
    pub max_per_client: usize,
}

impl Default for ConnLimits {
    /// 10 s for a request head, 30 s for a body; as many connections as the
    /// file limit allows (leaving 64 descriptors for the databases and logs),
    /// at most 1024; 64 per client address.
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: open_files_limit()
                .map_or(1024, |n| n.saturating_sub(64))
                .clamp(1, 1024),
            max_per_client: 64,
        }
    }
}

/// The soft limit on open files of this process (`ulimit -n`), read from
/// `/proc/self/limits` (no unsafe `getrlimit` call needed).
pub fn open_files_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// How long a request body may take before a newcomer may take its
/// connection's place, when no client holds more places than the newcomer
/// would, if it arrives slower than [`MIN_BODY_RATE`]: the demo's bodies
/// (forms, 1 KiB of JSON) arrive in one packet.
const SLOW_BODY_AFTER: Duration = Duration::from_secs(1);

/// Bytes per second (over the whole body so far) below which a body that
/// has taken [`SLOW_BODY_AFTER`] is slow, and may make room when every place
/// is taken. The demo's bodies are at most 64 KiB (forms, through the CSRF
/// layer) or 8 KiB (JSON), so an honest one arrives well within a second at
/// this rate. A lower bar can be paid: at 500 bytes a second (Apache's
/// `mod_reqtimeout` minimum) 64 addresses trickling about 35 KB/s in all
/// kept every place of a 64-place demo (attack round eleven); now keeping
/// 1,024 places costs an attacker 16 MiB/s, sent without a pause, since a
/// body ends at its limit and the next one starts its count afresh.
const MIN_BODY_RATE: u64 = 16 * 1024;

/// How long a body must have been arriving before, when every place is
/// taken and no connection is idle or judged slow, it may make room if it
/// arrives slower than [`MIN_BODY_RATE`] so far: otherwise connections that
/// sent a body's first byte, waited 0.9 s and started again on a fresh
/// connection, each too young to judge, kept every place (attack round
/// twelve). An honest body of the demo's arrives within this.
const YOUNG_BODY_AFTER: Duration = Duration::from_millis(100);

/// How long a client that had a connection displaced for waiting may not
/// displace another's.
const DISPLACED_FOR: Duration = Duration::from_secs(10);

/// Open connections, in all and per client, each with its handle.
struct Counts {
    open: Mutex<Open>,
    /// What connections' waiting times count from.
    epoch: Instant,
}

impl Default for Counts {
    fn default() -> Self {
        Self {
            open: Mutex::default(),
            epoch: Instant::now(),
        }
    }
}

#[derive(Default)]
struct Open {
    total: usize,
    /// Each client's connections, oldest first.
    per_client: HashMap<IpAddr, VecDeque<(u64, Arc<Conn>)>>,
    next_id: u64,
    /// Clients that lately had a connection displaced for waiting, and when
    /// (after the epoch): see [`Open::displaced_lately`].
    displaced: HashMap<IpAddr, Duration>,
}

/// An open connection as [`Counts`] sees it: what closes it, and what it
/// waits for. The fields are read without a lock by a newcomer looking for
/// a place, so they may be a moment out of date: a heuristic, never a
/// safety property.
struct Conn {
    evicted: Notify,
    /// Milliseconds after [`Counts::epoch`] since which the connection has
    /// been idle (a new connection, or one kept alive after a response,
    /// which waits for a request head or for the client to read), or since
    /// which its request's body has been arriving, or [`Conn::WORKING`]
    /// while the server works on a request.
    since: AtomicU64,
    /// Whether `since` counts a body arriving (not idleness).
    in_body: AtomicBool,
    /// Whether a request was answered on this connection.
    served: AtomicBool,
    /// Body bytes received on this connection, all its requests together.
    body_bytes: AtomicU64,
    /// Milliseconds this connection spent receiving the bodies of its
    /// earlier requests: a body's rate is judged over all of them, or a
    /// client would send a fresh small body every 0.9 s, each too young to
    /// be slow, and hold its place for a request a second.
    body_ms_before: AtomicU64,
    epoch: Instant,
}

impl Conn {
    const WORKING: u64 = u64::MAX;

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(Self::WORKING - 1)
    }

    /// From now on the connection is idle: it waits for a request, or for
    /// the client to read a response.
    fn idles(&self) {
        let now = self.now();
        self.body_ends(now);
        self.since.store(now, Ordering::Relaxed);
    }

    /// From now on a request body is arriving.
    fn receives_body(&self) {
        self.since.store(self.now(), Ordering::Relaxed);
        self.in_body.store(true, Ordering::Relaxed);
    }

    /// If a body was arriving, it no longer is: its time adds to the
    /// connection's.
    fn body_ends(&self, now: u64) {
        if self.in_body.swap(false, Ordering::Relaxed) {
            let took = now.saturating_sub(self.since.load(Ordering::Relaxed));
            self.body_ms_before.fetch_add(took, Ordering::Relaxed);
        }
    }

    /// `n` more bytes of the body arrived.
    fn received(&self, n: usize) {
        let n = u64::try_from(n).unwrap_or(u64::MAX);
        self.body_bytes.fetch_add(n, Ordering::Relaxed);
    }

    /// The client has sent what the server needs; the server works.
    fn works(&self) {
        self.body_ends(self.now());
        self.since.store(Self::WORKING, Ordering::Relaxed);
    }

    /// Whether, and how readily, this connection may make room for a
    /// newcomer at `now`: `Some((rank, since))`, lowest rank first and, within
    /// a rank, the earliest `since` (when it went idle or its body began,
    /// milliseconds after the epoch); `None` while the server works for it
    /// or its bodies arrive at a decent pace. Rank 0: silent, open for
    /// [`YOUNG_BODY_AFTER`] without a request, or bodies (this one and the
    /// connection's earlier ones) that have taken [`SLOW_BODY_AFTER`] in all
    /// and arrived slower than [`MIN_BODY_RATE`]. Rank 1: a body too young to
    /// judge that has taken [`YOUNG_BODY_AFTER`] and arrived slower so far.
    /// Rank 2: kept alive after an answer, as browsers keep theirs (closing
    /// one costs its client a new connection, where an attacker's young body
    /// would have stayed: attack round twelve), or just opened.
    fn displaceable_since(&self, now: u64) -> Option<(u8, u64)> {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let since = self.since.load(Ordering::Relaxed);
        if since == Self::WORKING {
            return None;
        }
        if !self.in_body.load(Ordering::Relaxed) {
            let silent = !self.served.load(Ordering::Relaxed)
                && now.saturating_sub(since) >= ms(YOUNG_BODY_AFTER);
            return Some((if silent { 0 } else { 2 }, since));
        }
        let took = now.saturating_sub(since) + self.body_ms_before.load(Ordering::Relaxed);
        let bytes = self.body_bytes.load(Ordering::Relaxed);
        if bytes.saturating_mul(1000) >= MIN_BODY_RATE * took {
            return None;
        }
        if took >= ms(SLOW_BODY_AFTER) {
            Some((0, since))
        } else if took >= ms(YOUNG_BODY_AFTER) {
            Some((1, since))
        } else {
            None
        }
    }
}

/// A connection's place in [`Counts`], given back when dropped; its
/// `evicted` fires when a newcomer took its place.
struct Admitted {
    counts: Arc<Counts>,
    client: IpAddr,
    id: u64,
    conn: Arc<Conn>,
}

impl Counts {
    /// A place for a connection from `ip`, or `None` when it must be closed.
    ///
    /// When every place is taken, the oldest connection of the client holding
    /// the most is closed to make room, if that client would still hold more
    /// than the newcomer: otherwise a handful of addresses at their per-client
    /// limit (17 x 64 > 1024) kept everyone else out for as long as they
    /// renewed their slow connections (attack round 4). Clients at par are
    /// never made to take turns for the connections the server works for;
    /// instead the connection idle longest, or with the slowest body (see
    /// [`Conn::displaceable_since`]), makes room, unless the newcomer's own
    /// client was displaced so within [`DISPLACED_FOR`]: otherwise about
    /// 1,100 addresses holding one stalled body or idle connection each kept
    /// everyone else out (attack round ten), and so did addresses sending a
    /// small request every 0.9 s on kept-alive connections (its second
    /// attack).
    fn admit(self: &Arc<Self>, ip: IpAddr, limits: &ConnLimits) -> Option<Admitted> {
        let client = client_network(ip);
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let mine = open.per_client.get(&client).map_or(0, VecDeque::len);
        if mine >= limits.max_per_client {
            return None;
        }
        if open.total >= limits.max_connections {
            let (heaviest, most) = open
                .per_client
                .iter()
                .map(|(c, conns)| (*c, conns.len()))
                .max_by_key(|(_, n)| *n)?;
            let displaced = if most > mine + 1 {
                open.remove_oldest(heaviest)
            } else {
                let now = self.epoch.elapsed();
                if open.displaced_lately(client, now) {
                    return None;
                }
                let now_ms = u64::try_from(now.as_millis()).unwrap_or(Conn::WORKING - 1);
                let (displaced, whose) = open.remove_longest_waiting(now_ms)?;
                // A kept-alive connection that was answered is an honest
                // client's as often as not (the second attack of round ten
                // barred them this way): only a connection that never got a
                // request through, or a slow body, bars its client.
                let honest = displaced.served.load(Ordering::Relaxed)
                    && !displaced.in_body.load(Ordering::Relaxed);
                if !honest {
                    open.note_displaced(whose, now, limits.max_connections);
                }
                Some(displaced)
            };
            displaced?.evicted.notify_one();
        }
        let id = open.next_id;
        open.next_id += 1;
        open.total += 1;
        let conn = Arc::new(Conn {
            evicted: Notify::new(),
            since: AtomicU64::new(Conn::WORKING),
            in_body: AtomicBool::new(false),
            body_bytes: AtomicU64::new(0),
            body_ms_before: AtomicU64::new(0),
            served: AtomicBool::new(false),
            epoch: self.epoch,
        });
        conn.idles();
        open.per_client
            .entry(client)
            .or_default()
            .push_back((id, Arc::clone(&conn)));
        Some(Admitted {
            counts: Arc::clone(self),
            client,
            id,
            conn,
        })
    }
}

impl Open {
    /// Take `client`'s oldest connection off the books; its handle.
    fn remove_oldest(&mut self, client: IpAddr) -> Option<Arc<Conn>> {
        let conns = self.per_client.get_mut(&client)?;
        let (_, conn) = conns.pop_front()?;
        if conns.is_empty() {
            self.per_client.remove(&client);
        }
        self.total -= 1;
        Some(conn)
    }

    /// Whether `client` had a connection displaced for waiting within the
    /// last [`DISPLACED_FOR`] (`now` after the epoch): such a client may
    /// take a free place but not displace anyone, so addresses that take
    /// turns holding every place cannot keep all of them too fresh to
    /// displace (each address displaces at most once per period).
    fn displaced_lately(&self, client: IpAddr, now: Duration) -> bool {
        self.displaced
            .get(&client)
            .is_some_and(|at| now.saturating_sub(*at) < DISPLACED_FOR)
    }

    /// Remember that `client` had a connection displaced at `now`, forgetting
    /// what is older than [`DISPLACED_FOR`] once more clients than four
    /// times the places are remembered (so the list holds at most the
    /// clients displaced within one period, each once).
    fn note_displaced(&mut self, client: IpAddr, now: Duration, places: usize) {
        if self.displaced.len() >= places.saturating_mul(4).max(64) {
            self.displaced
                .retain(|_, at| now.saturating_sub(*at) < DISPLACED_FOR);
        }
        self.displaced.insert(client, now);
    }

    /// Take the connection that may make room at `now` (milliseconds after
    /// the epoch) and has been idle or receiving a slow body the longest off
    /// the books; its handle and client. Runs only when every place is
    /// taken, over at most `max_connections` entries.
    fn remove_longest_waiting(&mut self, now: u64) -> Option<(Arc<Conn>, IpAddr)> {
        let (client, at, _) = self
            .per_client
            .iter()
            .flat_map(|(client, conns)| {
                conns.iter().enumerate().filter_map(move |(at, (_, conn))| {
                    Some((*client, at, conn.displaceable_since(now)?))
                })
            })
            .min_by_key(|(_, _, since)| *since)?;
        let conns = self.per_client.get_mut(&client)?;
        let (_, conn) = conns.remove(at)?;
        if conns.is_empty() {
            self.per_client.remove(&client);
        }
        self.total -= 1;
        Some((conn, client))
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self.counts.open.lock().unwrap_or_else(|p| p.into_inner());
        let Some(conns) = open.per_client.get_mut(&self.client) else {
            return;
        };
        // An evicted connection was taken off the books already.
        let Some(at) = conns.iter().position(|(id, _)| *id == self.id) else {
            return;
        };
        conns.remove(at);
        if conns.is_empty() {
            open.per_client.remove(&self.client);
        }
        open.total -= 1;
    }
}

/// Serve `router` on `listener` within `limits` until `shutdown` completes,
/// then let open requests finish (up to 10 s).
///
/// # Errors
/// Never at present; the accept loop survives accept errors (such as running
/// out of file descriptors) by pausing briefly.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnLimits,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let tls = tls.map(tokio_rustls::TlsAcceptor::from);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let graceful = GracefulShutdown::new();
    let counts = Arc::new(Counts::default());
    tokio::pin!(shutdown);
    loop {
        let (stream, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, or the peer left before we
                    // accepted: pause so a full table is not a busy loop.
                    tracing::warn!("accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(admitted) = counts.admit(addr.ip(), &limits) else {
            tracing::debug!(client = %addr.ip(), "connection limit reached; closing a new connection");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let body_timeout = limits.body_timeout;
        let conn = Arc::clone(&admitted.conn);
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            // The head is in: the server works, but for a body still to
            // come; once the response is ready the connection is idle (the
            // client takes the response, then may send another request).
            if http_body::Body::is_end_stream(req.body()) {
                conn.works();
            } else {
                conn.receives_body();
            }
            let expired = Arc::new(AtomicBool::new(false));
            let deadline =
                |body| Deadline::new(body, body_timeout, Arc::clone(&expired), Arc::clone(&conn));
            let mut req = req.map(|body| axum::body::Body::new(deadline(body)));
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(addr));
            let mut router = router.clone();
            let refused = ill_framed(&req);
            let conn = Arc::clone(&conn);
            async move {
                if let Some(why) = refused {
                    return Ok(closing(http::StatusCode::BAD_REQUEST, why));
                }
                let response = tower_service::Service::call(&mut router, req).await;
                let response = response.unwrap_or_else(|never| match never {});
                conn.served.store(true, Ordering::Relaxed);
                conn.idles();
                // The handler saw a failed body read, which its extractor
                // calls a 400; the client was too slow, which is a 408.
                if expired.load(Ordering::Relaxed) {
                    return Ok::<_, Infallible>(request_timeout());
                }
                Ok(response)
            }
        });
        let http = http.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        let handshake_timeout = limits.header_timeout;
        tokio::spawn(async move {
            let conn = Arc::clone(&admitted.conn);
            let served = async move {
                match tls {
                    None => {
                        let conn = http.serve_connection(TokioIo::new(stream), service);
                        watcher.watch(conn).await
                    }
                    Some(acceptor) => {
                        // The handshake counts against the header timeout: a
                        // client that stalls in it holds nothing for long.
                        let accepted =
                            tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await;
                        let Ok(Ok(stream)) = accepted else {
                            tracing::debug!(client = %addr.ip(), "TLS handshake failed or timed out");
                            return Ok(());
                        };
                        let conn = http.serve_connection(TokioIo::new(stream), service);
                        watcher.watch(conn).await
                    }
                }
            };
            tokio::select! {
                // A client that breaks the protocol or times out ends here; the
                // connection's error says nothing the operator must act on.
                ended = served => if let Err(e) = ended {
                    tracing::debug!("connection ended: {e}");
                },
                () = conn.evicted.notified() => {
                    tracing::debug!(client = %addr.ip(), "server full; closed this client's oldest connection for a newcomer");
                }
            }
            drop(admitted);
        });
    }
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after 10 s; closing them");
    }
    Ok(())
}

/// Why a request's framing says nothing a server can trust about which site
/// it is for (RFC 9112 section 3.2, attack round 4): an HTTP/1.1 request
/// without `Host`, or one whose request line names another authority than
/// its `Host` (absolute form, which only proxies are sent).
fn ill_framed<B>(req: &http::Request<B>) -> Option<&'static str> {
    let host = req.headers().get(http::header::HOST);
    if req.version() == http::Version::HTTP_11 && host.is_none() {
        return Some("an HTTP/1.1 request needs a Host header");
    }
    let authority = req.uri().authority()?;
    let same = host.is_some_and(|h| {
        h.as_bytes()
            .eq_ignore_ascii_case(authority.as_str().as_bytes())
    });
    (!same).then_some("the request line names another host than the Host header")
}

/// `408 Request Timeout`, closing the connection (its remaining body bytes
/// would be read as the next request).
fn request_timeout() -> axum::response::Response {
    closing(
        http::StatusCode::REQUEST_TIMEOUT,
        "the request body did not arrive in time",
    )
}

/// An error answer that closes the connection.
fn closing(status: http::StatusCode, why: &str) -> axum::response::Response {
    let reason = status.canonical_reason().unwrap_or("Error");
    let mut response =
        axum::response::IntoResponse::into_response((status, format!("{reason}: {why}.\n")));
    response.headers_mut().insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    response
}

pin_project_lite::pin_project! {
    /// A request body that must arrive whole within its deadline: past it,
    /// reading fails and `expired` is set (the request is answered 408 and the
    /// connection closed), so a client cannot hold a connection by trickling a
    /// body. Once it is in, its connection no longer waits on the client.
    struct Deadline<B> {
        #[pin]
        body: B,
        #[pin]
        sleep: tokio::time::Sleep,
        expired: Arc<AtomicBool>,
        conn: Arc<Conn>,
    }
}

impl<B> Deadline<B> {
    fn new(body: B, within: Duration, expired: Arc<AtomicBool>, conn: Arc<Conn>) -> Self {
        Self {
            body,
            sleep: tokio::time::sleep(within),
            expired,
            conn,
        }
    }
}

/// The body did not arrive within its deadline.
#[derive(Debug)]
struct BodyTimeout;

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body did not arrive in time")
    }
}

impl std::error::Error for BodyTimeout {}

impl<B> http_body::Body for Deadline<B>
where
    B: http_body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = B::Data;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        if let std::task::Poll::Ready(frame) = this.body.as_mut().poll_frame(cx) {
            if let Some(Ok(data)) = frame.as_ref().map(|f| f.as_ref().map(|f| f.data_ref())) {
                this.conn
                    .received(data.map_or(0, hyper::body::Buf::remaining));
            }
            if frame.is_none() || this.body.is_end_stream() {
                this.conn.works();
            }
            return std::task::Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        match this.sleep.poll(cx) {
            std::task::Poll::Ready(()) => {
                this.expired.store(true, Ordering::Relaxed);
                std::task::Poll::Ready(Some(Err(Box::new(BodyTimeout))))
            }
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Four places, four per client, and counts whose clock began a minute
    /// ago (so tests can date connections back).
    fn four_places() -> (ConnLimits, Arc<Counts>) {
        let limits = ConnLimits {
            header_timeout: Duration::from_secs(1),
            body_timeout: Duration::from_secs(1),
            max_connections: 4,
            max_per_client: 4,
        };
        let counts = Arc::new(Counts {
            open: Mutex::default(),
            epoch: Instant::now() - Duration::from_secs(60),
        });
        (limits, counts)
    }

    /// Whether `a` was told to close for a newcomer (a stored permit makes
    /// `notified` ready at its first poll).
    async fn fired(a: &Admitted) -> bool {
        tokio::time::timeout(Duration::ZERO, a.conn.evicted.notified())
            .await
            .is_ok()
    }

    #[test]
    fn admission_counts_per_client_and_in_all_and_gives_back() {
        let limits = ConnLimits {
            header_timeout: Duration::from_secs(1),
            body_timeout: Duration::from_secs(1),
            max_connections: 3,
            max_per_client: 2,
        };
        let counts = Arc::new(Counts::default());
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        // Each connection at work (an idle one could make room).
        let working = |ip| {
            let admitted = counts.admit(ip, &limits);
            admitted.inspect(|a| a.conn.works())
        };
        let a1 = working(a).expect("first");
        let _a2 = working(a).expect("second");
        assert!(counts.admit(a, &limits).is_none(), "third from one client");
        let _b1 = working(b).expect("another client");
        // Full, and b would hold as many as a: no eviction, refused.
        assert!(counts.admit(b, &limits).is_none(), "over the total");
        drop(a1);
        assert!(counts.admit(b, &limits).is_some(), "a place came free");
    }

    /// Attack round 4: a few addresses at their per-client limit filled every
    /// place. A newcomer now takes the place of the oldest connection of the
    /// client holding the most, and the evicted connection is told to close.
    #[tokio::test]
    async fn when_full_a_newcomer_displaces_the_heaviest_clients_oldest() {
        let limits = ConnLimits {
            header_timeout: Duration::from_secs(1),
            body_timeout: Duration::from_secs(1),
            max_connections: 4,
            max_per_client: 3,
        };
        let counts = Arc::new(Counts::default());
        let heavy: IpAddr = [10, 0, 0, 1].into();
        let light: IpAddr = [10, 0, 0, 2].into();
        let newcomer: IpAddr = [10, 0, 0, 3].into();
        // Each connection at work (an idle one could make room).
        let working = |ip| {
            let admitted = counts.admit(ip, &limits);
            admitted.inspect(|a| a.conn.works())
        };
        let h: Vec<Admitted> = (0..3).map(|_| working(heavy).expect("heavy")).collect();
        let _l = working(light).expect("light");
        let n = working(newcomer).expect("a place made");
        assert!(
            fired(&h[0]).await,
            "the heavy client's oldest connection closes"
        );
        assert!(!fired(&h[1]).await && !fired(&h[2]).await, "only one");
        assert_eq!(counts.open.lock().expect("lock").total, 4);
        // Dropping the evicted one gives back nothing twice.
        let mut h = h.into_iter();
        drop(h.next());
        assert_eq!(counts.open.lock().expect("lock").total, 4);
        // Now heavy holds 2, light 1, newcomer 1: a second newcomer displaces
        // heavy again, but a client at par with the heaviest is refused.
        let second: IpAddr = [10, 0, 0, 4].into();
        let _s = working(second).expect("heavy still holds the most");
        assert!(
            counts.admit([10, 0, 0, 5].into(), &limits).is_none(),
            "no one heavier"
        );
        drop(n);
        assert_eq!(counts.open.lock().expect("lock").total, 3);
    }

    /// Attack round ten: about 1,100 addresses, each holding one stalled
    /// body or idle connection, took every place, and as no client held more
    /// than another, newcomers were refused. Now the connection idle
    /// longest, or with the slowest body, makes room; one the server is
    /// working for, or whose body arrives at a decent pace, never does; and
    /// a client displaced so displaces no one for a while.
    #[tokio::test]
    async fn when_full_at_par_the_connection_idle_longest_or_slowest_makes_room() {
        let (limits, counts) = four_places();
        let at = |i: u8| IpAddr::from([10, 0, 0, i]);
        let place = |i| counts.admit(at(i), &limits).expect("a place");
        let (stalled, uploading, working, idle) = (place(1), place(2), place(3), place(4));
        // Bodies that began 50 s ago: one has 10 bytes, the other 1 MB
        // (20 KB a second).
        for (conn, bytes) in [(&stalled.conn, 10), (&uploading.conn, 1_000_000)] {
            conn.receives_body();
            conn.since.fetch_sub(50_000, Ordering::Relaxed);
            conn.received(bytes);
        }
        working.conn.works();
        idle.conn.served.store(true, Ordering::Relaxed);
        idle.conn.idles();
        idle.conn.since.fetch_sub(10_000, Ordering::Relaxed);
        let d = place(5);
        assert!(fired(&stalled).await, "the slow body makes room first");
        assert!(!fired(&idle).await, "only one");
        let e = place(6);
        assert!(fired(&idle).await, "then the connection idle longest");
        // A client displaced lately displaces no one, so addresses taking
        // turns cannot keep every place; but an answered kept-alive
        // connection is an honest client's as often as not, and bars no one.
        assert!(counts.admit(at(1), &limits).is_none(), "displaced lately");
        assert!(
            !counts
                .open
                .lock()
                .expect("lock")
                .displaced
                .contains_key(&at(4))
        );
        // Newcomers are idle until they send a request: the longest idle goes.
        d.conn.since.fetch_sub(1_000, Ordering::Relaxed);
        let _f = place(7);
        assert!(fired(&d).await && !fired(&e).await);
        // Left: a decent upload, a request being worked on, and two idle
        // newcomers; once both newcomers send requests, no one makes room.
        e.conn.works();
        let g = place(8);
        g.conn.works();
        assert!(counts.admit(at(9), &limits).is_none(), "no one to displace");
        assert!(!fired(&uploading).await && !fired(&working).await);
        assert_eq!(counts.open.lock().expect("lock").total, 4);
    }

    /// Attack round eleven: bodies trickled at just over 500 bytes a second
    /// (then the bar) held every place. A body is now slow below 16 KiB a
    /// second, judged over all the bodies of its connection, so a fresh
    /// small body every 0.9 s (each too young to judge alone) is slow too.
    #[test]
    fn a_body_is_slow_by_its_connections_rate_over_all_its_bodies() {
        let counts = Arc::new(Counts {
            open: Mutex::default(),
            epoch: Instant::now() - Duration::from_secs(60),
        });
        let limits = ConnLimits {
            header_timeout: Duration::from_secs(1),
            body_timeout: Duration::from_secs(1),
            max_connections: 8,
            max_per_client: 8,
        };
        let admitted = counts
            .admit([10, 0, 0, 1].into(), &limits)
            .expect("a place");
        let conn = &admitted.conn;
        let now = || conn.now();
        // A body that began 2 s ago at 1 KB a second: slow (it was not, at
        // the old bar of 500 bytes a second).
        conn.receives_body();
        conn.since.fetch_sub(2_000, Ordering::Relaxed);
        conn.received(2_000);
        assert!(conn.displaceable_since(now()).is_some(), "1 KB/s is slow");
        // At 25 KB a second it is not.
        conn.received(48_000);
        assert!(conn.displaceable_since(now()).is_none(), "25 KB/s");
        conn.works();
        assert!(conn.displaceable_since(now()).is_none(), "worked on");
        // A fresh body, too young to judge alone, on a connection whose
        // bodies have taken 2 s for 50 KB: fast enough so far.
        conn.receives_body();
        conn.since.fetch_sub(500, Ordering::Relaxed);
        assert!(
            conn.displaceable_since(now()).is_none(),
            "young and fast so far"
        );
        conn.works();
        // Nine small bodies of 0.9 s each on a new connection: each alone
        // is too young to be slow, together they are.
        let other = counts
            .admit([10, 0, 0, 2].into(), &limits)
            .expect("a place");
        let conn = &other.conn;
        for _ in 0..9 {
            conn.receives_body();
            conn.since.fetch_sub(900, Ordering::Relaxed);
            conn.received(10);
            conn.works();
            conn.idles();
        }
        conn.receives_body();
        assert!(
            conn.displaceable_since(conn.now()).is_some(),
            "slow over its bodies"
        );
    }

    /// Attack round twelve: connections that sent a body's first byte,
    /// waited 0.9 s and started again on a fresh connection were each too
    /// young to judge, and held every place (2 to 30 of 60 ordinary requests
    /// answered). When no connection is idle or judged slow, a body that has
    /// taken 100 ms and arrived slower than the bar so far makes room, the
    /// oldest first; a body younger than that, or arriving fast, never does.
    #[tokio::test]
    async fn when_nothing_else_can_make_room_a_young_slow_body_does() {
        let (limits, counts) = four_places();
        let at = |i: u8| IpAddr::from([10, 0, 0, i]);
        let place = |i| counts.admit(at(i), &limits).expect("a place");
        let (older, younger, fast, working) = (place(1), place(2), place(3), place(4));
        for (conn, began_ms, bytes) in [
            (&older.conn, 900, 1),
            (&younger.conn, 400, 1),
            (&fast.conn, 900, 100_000),
        ] {
            conn.receives_body();
            conn.since.fetch_sub(began_ms, Ordering::Relaxed);
            conn.received(bytes);
        }
        working.conn.works();
        let now = older.conn.now();
        assert_eq!(
            older.conn.displaceable_since(now).map(|(rank, _)| rank),
            Some(1)
        );
        assert!(fast.conn.displaceable_since(now).is_none(), "arriving fast");
        let newcomer = place(5);
        assert!(fired(&older).await, "the oldest young slow body makes room");
        assert!(!fired(&younger).await && !fired(&fast).await && !fired(&working).await);
        assert!(
            counts.admit(at(1), &limits).is_none(),
            "its client is barred a while"
        );
        // A connection silent for 100 ms goes before any young body.
        newcomer.conn.since.fetch_sub(200, Ordering::Relaxed);
        let next = place(6);
        assert!(fired(&newcomer).await && !fired(&younger).await);
        // A body younger than 100 ms is left alone: with the others at work
        // or arriving fast, no one makes room.
        next.conn.works();
        younger.conn.receives_body();
        assert!(counts.admit(at(7), &limits).is_none(), "no one to displace");
        assert!(!fired(&younger).await);
    }

    #[test]
    fn the_default_leaves_room_under_the_file_limit() {
        let limits = ConnLimits::default();
        if let Some(files) = open_files_limit() {
            assert!(
                limits.max_connections < files,
                "{limits:?} with {files} files"
            );
        }
        assert!(limits.max_connections >= 1);
    }
}
