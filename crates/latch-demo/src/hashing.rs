//! Password hashing on a fixed set of threads, taking clients in turn (A7).
//!
//! Argon2id takes 19 MiB and tens of milliseconds per hash on purpose. Run on
//! tokio's blocking pool, as many hashes ran at once as requests arrived (up
//! to 512 threads), and the allocator kept what each thread had used: 200
//! concurrent wrong passwords left the demo at 11.4 GB of memory. Here a fixed
//! number of worker threads hash, so at most that many hashes (and allocator
//! arenas) exist at once.
//!
//! The jobs wait in one queue per client network (an IPv4 address or an IPv6
//! /64, as for every other limit), and the threads take those queues in turn,
//! one job each. A single first-come queue let whoever retried fastest hold
//! every place in it: 64 addresses sending wrong passwords as fast as they
//! were answered (about 5,000 requests/s) kept an honest sign-in at a 503 in
//! 4 of 4 tries (attack round twelve). Taken in turn, a client waits behind
//! at most one job per other client, however fast those clients send.
//!
//! Two more rules, from the attack on that (round thirteen), where 160
//! addresses keeping 4 sign-ins each in flight held every place of the queue
//! and a newcomer got a 503 at once:
//! - A client that had fewer than [`FEW_HASHES`] hashes in the last five
//!   minutes (someone signing up, then in) is taken before the clients that
//!   had more (a flood, whose every address gets 20 checked passwords per
//!   five minutes), and one that had none before one that had one or two.
//!   To keep newcomers waiting, a flood must bring fresh addresses about as
//!   fast as the threads hash, not merely many addresses.
//! - When the queue is full, a client with fewer waiting jobs takes the place
//!   of the newest job of the client with the most (which is refused); and
//!   a client takes the place of a job of a client with more hashes lately
//!   (560 addresses keeping one sign-in each waiting filled the queue with
//!   clients of one job each).
//!
//! A request is refused at once with [`Busy`] (a 503) when its client already
//! has [`PER_CLIENT`] jobs waiting or running, or the queue is full and
//! nobody waiting holds more than it is due; a job that waited past the
//! deadline is refused without being hashed, and so is one whose request went
//! away.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// Jobs one client network may have waiting or running at once: a few
/// people behind one NAT signing in together, not a flood's worth.
pub const PER_CLIENT: usize = 4;

/// The password hashing threads of the demo.
#[derive(Clone)]
pub struct Hashers {
    inner: Arc<Handle>,
}

/// Dropped with the last [`Hashers`]: tells the threads to stop.
struct Handle {
    shared: Arc<Shared>,
    max_wait: Duration,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.ready.notify_all();
    }
}

impl std::fmt::Debug for Hashers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hashers")
            .field("max_wait", &self.inner.max_wait)
            .finish_non_exhaustive()
    }
}

/// The hashers are all busy: the client has as many jobs as it may, the
/// queue is full, or a job waited too long. Answer 503 and let the client
/// try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

impl std::fmt::Display for Busy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("every password hasher is busy")
    }
}

impl std::error::Error for Busy {}

/// Who a job is for: a client network, or `None` when the address is not
/// known (all such requests share one turn).
type Client = Option<IpAddr>;

struct Job {
    client: Client,
    queued: Instant,
    work: Box<dyn FnOnce(bool) + Send>,
}

struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding the lock left the queue consistent (every
        // change to it is a single step), so carry on.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// How long a client's hashes count towards [`FEW_HASHES`]: the sign-in
/// throttle's window.
const RECENT: Duration = Duration::from_secs(300);

/// Clients that had fewer hashes than this in the last five minutes are taken
/// before the others, and the fewer the sooner: a sign-up, a sign-in and
/// one mistyped password.
pub const FEW_HASHES: u32 = 3;

/// One line per count of recent hashes below [`FEW_HASHES`], and one for the
/// rest.
const LINES: usize = FEW_HASHES as usize + 1;

struct Queue {
    /// Clients with a job waiting, in lines by the hashes they had lately
    /// (0, 1, 2, then [`FEW_HASHES`] or more), each in the order the threads
    /// take them; a line is taken only when those before it are empty.
    lines: [VecDeque<Client>; LINES],
    /// Each waiting client's jobs, oldest first.
    waiting: HashMap<Client, VecDeque<Job>>,
    /// Jobs waiting or running, per client.
    held: HashMap<Client, usize>,
    /// Hashes each client had lately: how many, counted since when. Entries
    /// come only from hashes run, so there are at most as many as the
    /// threads hash in [`RECENT`]; old ones are swept out as it grows.
    recent: HashMap<Client, (u32, Instant)>,
    /// Sweep `recent` when it reaches this size.
    sweep_at: usize,
    /// Jobs waiting, all clients.
    len: usize,
    /// At most that many jobs wait.
    capacity: usize,
    /// A job that waited longer is skipped.
    max_wait: Duration,
    closed: bool,
}

impl Queue {
    fn new(capacity: usize, max_wait: Duration) -> Self {
        Self {
            lines: Default::default(),
            waiting: HashMap::new(),
            held: HashMap::new(),
            recent: HashMap::new(),
            sweep_at: 1024,
            len: 0,
            capacity,
            max_wait,
            closed: false,
        }
    }

    /// Queue `job`, or give it back when its client holds [`PER_CLIENT`]
    /// jobs, or the queue is full and no client holds more waiting jobs than
    /// this one would.
    fn push(&mut self, job: Job, now: Instant) -> Result<(), Job> {
        let held = self.held.get(&job.client).copied().unwrap_or(0);
        if held >= PER_CLIENT || self.closed {
            return Err(job);
        }
        if self.len >= self.capacity && !self.make_room(job.client, now) {
            return Err(job);
        }
        self.held.insert(job.client, held + 1);
        self.len += 1;
        let client = job.client;
        let jobs = self.waiting.entry(client).or_default();
        jobs.push_back(job);
        if jobs.len() == 1 {
            self.line_up(client, now);
        }
        Ok(())
    }

    /// The queue is full: refuse a waiting job to make room for one of
    /// `client`'s, if someone holds more than it is due. A full queue refused
    /// every newcomer at once: 160 addresses keeping 4 sign-ins each in
    /// flight held all 512 places, and then 560 addresses keeping one each
    /// (attack round thirteen). So:
    /// - the newest job of the client with the most waiting goes, if that is
    ///   more than `client` would have with one more;
    /// - otherwise the newest job of the client last to line up in the
    ///   furthest line behind `client`'s (a client that had more hashes
    ///   lately);
    /// - otherwise nobody makes room.
    fn make_room(&mut self, client: Client, now: Instant) -> bool {
        let own = self.waiting.get(&client).map_or(0, VecDeque::len);
        let greediest = self
            .waiting
            .iter()
            .map(|(&c, jobs)| (c, jobs.len()))
            .max_by_key(|&(_, n)| n);
        let victim = match greediest {
            Some((greedy, most)) if most > own + 1 => greedy,
            _ => {
                let own_line = self.line_of(client, now);
                let behind = self.lines[own_line + 1..].iter().rev();
                match behind.filter_map(VecDeque::back).next() {
                    Some(&busier) => busier,
                    None => return false,
                }
            }
        };
        let Some(jobs) = self.waiting.get_mut(&victim) else {
            return false;
        };
        // Dropped, the job's reply goes with it: its request gets `Busy`.
        drop(jobs.pop_back());
        if jobs.is_empty() {
            self.waiting.remove(&victim);
            // It waits in one line or the other, once.
            for line in &mut self.lines {
                line.retain(|&c| c != victim);
            }
        }
        self.len -= 1;
        self.done(victim);
        true
    }

    /// The line of `client`: the hashes it had within [`RECENT`], up to
    /// [`FEW_HASHES`].
    fn line_of(&self, client: Client, now: Instant) -> usize {
        let hashed = match self.recent.get(&client) {
            Some(&(n, since)) if now.duration_since(since) < RECENT => n,
            _ => 0,
        };
        hashed.min(FEW_HASHES) as usize
    }

    /// Put `client` at the back of its line.
    fn line_up(&mut self, client: Client, now: Instant) {
        let line = self.line_of(client, now);
        self.lines[line].push_back(client);
    }

    /// The oldest job of the client whose turn it is, and whether it waited
    /// too long; that client lines up again if it has more.
    fn pop(&mut self, now: Instant) -> Option<(Job, bool)> {
        let (client, jobs) = loop {
            let client = self.lines.iter_mut().find_map(VecDeque::pop_front)?;
            // Every client in a line has jobs waiting; skip one that does
            // not, rather than stop the thread.
            if let Some(jobs) = self.waiting.get_mut(&client).filter(|j| !j.is_empty()) {
                break (client, jobs);
            }
        };
        let job = jobs.pop_front()?;
        let more = !jobs.is_empty();
        if !more {
            self.waiting.remove(&client);
        }
        self.len -= 1;
        let expired = now.duration_since(job.queued) > self.max_wait;
        if !expired {
            self.hashed(client, now);
        }
        if more {
            self.line_up(client, now);
        }
        Some((job, expired))
    }

    /// Count a hash for `client`.
    fn hashed(&mut self, client: Client, now: Instant) {
        if self.recent.len() >= self.sweep_at {
            self.recent
                .retain(|_, &mut (_, since)| now.duration_since(since) < RECENT);
            self.sweep_at = (self.recent.len() * 2).max(1024);
        }
        let entry = self.recent.entry(client).or_insert((0, now));
        if now.duration_since(entry.1) >= RECENT {
            *entry = (0, now);
        }
        entry.0 += 1;
    }

    /// A job of `client` is over (run, skipped or refused).
    fn done(&mut self, client: Client) {
        if let Some(held) = self.held.get_mut(&client) {
            *held -= 1;
            if *held == 0 {
                self.held.remove(&client);
            }
        }
    }
}

impl Hashers {
    /// `threads` hashing threads (at least one) behind a queue of `queue`
    /// jobs; a job not started within `max_wait` is refused.
    ///
    /// # Errors
    /// When a thread cannot be started.
    pub fn new(threads: usize, queue: usize, max_wait: Duration) -> anyhow::Result<Self> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::new(queue, max_wait)),
            ready: Condvar::new(),
        });
        for i in 0..threads.max(1) {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("latch-demo-hash-{i}"))
                .spawn(move || work(&shared))?;
        }
        Ok(Self {
            inner: Arc::new(Handle { shared, max_wait }),
        })
    }

    /// One thread per core, room for 256 waiting jobs per thread (each holds
    /// a password of at most 1 KiB and a stored hash), five seconds' wait at
    /// most: at most one 19 MiB hash per core at any time (see security.md
    /// A7 for what a flood needs to keep a newcomer out).
    ///
    /// # Errors
    /// When a thread cannot be started.
    pub fn for_this_machine() -> anyhow::Result<Self> {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        Self::with_queue(cores * 256)
    }

    /// [`for_this_machine`](Self::for_this_machine) with room for `jobs`
    /// waiting jobs.
    ///
    /// # Errors
    /// When a thread cannot be started.
    pub fn with_queue(jobs: usize) -> anyhow::Result<Self> {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        Self::new(cores, jobs, Duration::from_secs(5))
    }

    /// Run `f` on a hashing thread, in `client`'s turn (`client` is the
    /// request's address; it is counted by its network, see
    /// [`client_network`](crate::limits::client_network)).
    ///
    /// # Errors
    /// [`Busy`] when the client already has [`PER_CLIENT`] jobs, the queue is
    /// full, the job waited past the deadline, or the threads are gone.
    pub async fn run<T: Send + 'static>(
        &self,
        client: Option<IpAddr>,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Busy> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            client: client.map(crate::limits::client_network),
            queued: Instant::now(),
            work: Box::new(move |expired| {
                // Nobody waits any more (the client left) or too late: skip
                // the hash; dropping `reply` answers `Busy`.
                if !expired && !reply.is_closed() {
                    let _ = reply.send(f());
                }
            }),
        };
        let shared = &self.inner.shared;
        if shared.lock().push(job, Instant::now()).is_err() {
            return Err(Busy);
        }
        shared.ready.notify_one();
        answer.await.map_err(|_| Busy)
    }
}

fn work(shared: &Shared) {
    loop {
        let (job, expired) = {
            let mut queue = shared.lock();
            loop {
                if queue.closed {
                    return; // every handle dropped: the app is gone
                }
                if let Some(next) = queue.pop(Instant::now()) {
                    break next;
                }
                queue = shared.ready.wait(queue).unwrap_or_else(|p| p.into_inner());
            }
        };
        let client = job.client;
        // A panicking hash must still give its client's place back.
        let run = std::panic::AssertUnwindSafe(|| (job.work)(expired));
        let _ = std::panic::catch_unwind(run);
        shared.lock().done(client);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

    fn ip(n: u8) -> Option<IpAddr> {
        Some(IpAddr::from([192, 0, 2, n]))
    }

    /// Jobs waiting or running for everyone, as the threads see them.
    fn held(hashers: &Hashers) -> usize {
        hashers.inner.shared.lock().held.values().sum()
    }

    /// Start `f` as `client`'s job and return once it is queued (or refused),
    /// so jobs queue in the order they are started here.
    async fn queued<T: Send + 'static>(
        hashers: &Hashers,
        client: Option<IpAddr>,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> tokio::task::JoinHandle<Result<T, Busy>> {
        let of = |hashers: &Hashers| {
            let queue = hashers.inner.shared.lock();
            let client = client.map(crate::limits::client_network);
            (queue.held.get(&client).copied(), queue.len)
        };
        let before = of(hashers);
        let h = hashers.clone();
        let task = tokio::spawn(async move { h.run(client, f).await });
        while of(hashers) == before && !task.is_finished() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        task
    }

    /// Hold the only thread with a job of `client` until the sender is
    /// used; returns once the thread has taken it.
    async fn occupy(
        hashers: &Hashers,
        client: Option<IpAddr>,
    ) -> (
        std::sync::mpsc::Sender<()>,
        tokio::task::JoinHandle<Result<(), Busy>>,
    ) {
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let task = queued(hashers, client, move || {
            let _ = wait.recv();
        })
        .await;
        while hashers.inner.shared.lock().len > 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        (release, task)
    }

    /// The clients whose jobs ran, in the order they ran.
    type Order = Arc<Mutex<Vec<u8>>>;

    /// [`queued`] a job of `client` that writes it down in `order`.
    async fn queued_in(
        hashers: &Hashers,
        order: &Order,
        client: u8,
    ) -> tokio::task::JoinHandle<Result<(), Busy>> {
        let order = Arc::clone(order);
        queued(hashers, ip(client), move || {
            order.lock().unwrap().push(client)
        })
        .await
    }

    /// Give each of `clients` the hashes that take it out of the first line.
    async fn make_busy(hashers: &Hashers, clients: std::ops::RangeInclusive<u8>) {
        for client in clients {
            for _ in 0..FEW_HASHES {
                assert_eq!(hashers.run(ip(client), || ()).await, Ok(()));
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_is_refused_at_once_and_nothing_runs_beyond_the_threads() {
        let hashers = Hashers::new(1, 2, Duration::from_secs(10)).expect("threads");
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..10u8)
            .map(|i| {
                let (hashers, running, most) = (hashers.clone(), running.clone(), most.clone());
                tokio::spawn(async move {
                    hashers
                        .run(ip(i), move || {
                            let now = running.fetch_add(1, SeqCst) + 1;
                            most.fetch_max(now, SeqCst);
                            std::thread::sleep(Duration::from_millis(100));
                            running.fetch_sub(1, SeqCst);
                        })
                        .await
                })
            })
            .collect();
        let mut done = 0;
        let mut busy = 0;
        for t in tasks {
            match t.await.expect("task") {
                Ok(()) => done += 1,
                Err(Busy) => busy += 1,
            }
        }
        assert_eq!(most.load(SeqCst), 1);
        assert!(busy >= 10 - 3, "{busy} refused, {done} done");
        assert!(done >= 1);
    }

    #[tokio::test]
    async fn a_job_that_waited_too_long_is_refused() {
        let hashers = Hashers::new(1, 4, Duration::from_millis(50)).expect("threads");
        let slow = hashers.run(None, || std::thread::sleep(Duration::from_millis(200)));
        let late = hashers.run(None, || ());
        let (slow, late) = tokio::join!(slow, late);
        assert_eq!(slow, Ok(()));
        assert_eq!(late, Err(Busy));
    }

    /// Attack round twelve: with one first-come queue, clients that retried
    /// fastest held every place. Now three clients each queueing as many
    /// jobs as they may cannot put a fourth behind more than one job each.
    #[tokio::test]
    async fn clients_are_taken_in_turn_so_floods_cannot_starve_a_newcomer() {
        let hashers = Hashers::new(1, 64, Duration::from_secs(10)).expect("threads");
        let (release, first) = occupy(&hashers, ip(1)).await;
        let order = Order::default();
        let mut tasks = Vec::new();
        for flooder in 1..=3 {
            let already = usize::from(flooder == 1);
            for _ in already..PER_CLIENT {
                tasks.push(queued_in(&hashers, &order, flooder).await);
            }
        }
        let newcomer = queued_in(&hashers, &order, 9).await;
        release.send(()).unwrap();
        assert_eq!(newcomer.await.unwrap(), Ok(()));
        assert_eq!(first.await.unwrap(), Ok(()));
        for t in tasks {
            assert_eq!(t.await.unwrap(), Ok(()));
        }
        let order = order.lock().unwrap().clone();
        let place = order.iter().position(|&c| c == 9).unwrap();
        // First come, first served, it would have run last (12th).
        assert!(place <= 3, "the newcomer ran {}th: {order:?}", place + 1);
        assert_eq!(order.len(), 3 * PER_CLIENT - 1 + 1);
    }

    #[tokio::test]
    async fn a_client_past_its_share_is_refused_at_once_and_others_are_not() {
        let hashers = Hashers::new(1, 64, Duration::from_secs(10)).expect("threads");
        let (release, first) = occupy(&hashers, ip(1)).await;
        let mut tasks = vec![first];
        for _ in 1..PER_CLIENT {
            tasks.push(queued(&hashers, ip(1), || ()).await);
        }
        let over = hashers.run(ip(1), || ());
        let over = tokio::time::timeout(Duration::from_secs(1), over).await;
        assert_eq!(over, Ok(Err(Busy)), "refused at once, not queued");
        // The same /64 is the same client; another network is not.
        let v6 = |last: u16| Some(IpAddr::from([0x2001, 0xdb8, 0, 1, 0, 0, 0, last]));
        for n in 0..PER_CLIENT as u16 {
            tasks.push(queued(&hashers, v6(n), || ()).await);
        }
        let over = hashers.run(v6(999), || ());
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(1), over).await,
            Ok(Err(Busy))
        );
        let other = queued(&hashers, ip(2), || ()).await;
        release.send(()).unwrap();
        assert_eq!(other.await.unwrap(), Ok(()));
        for t in tasks {
            assert_eq!(t.await.unwrap(), Ok(()));
        }
        assert_eq!(held(&hashers), 0, "every place given back");
        assert_eq!(hashers.run(ip(1), || 7).await, Ok(7));
    }

    /// Attack round thirteen: 160 addresses keeping 4 jobs each held every
    /// place, and a newcomer was refused at once. Now the newcomer takes the
    /// place of the newest job of the client with the most waiting, until
    /// every client has one.
    #[tokio::test]
    async fn a_full_queue_makes_room_for_a_client_with_fewer_waiting_jobs() {
        let hashers = Hashers::new(1, 3, Duration::from_secs(10)).expect("threads");
        let (release, running) = occupy(&hashers, ip(8)).await;
        let mut a = Vec::new();
        for _ in 0..3 {
            a.push(queued(&hashers, ip(1), || ()).await);
        }
        let b = queued(&hashers, ip(2), || ()).await;
        let c = queued(&hashers, ip(3), || ()).await;
        // Now one waiting job each, and no hashes yet: nobody has more to
        // give up.
        let d = tokio::time::timeout(Duration::from_secs(1), hashers.run(ip(4), || ())).await;
        assert_eq!(d, Ok(Err(Busy)), "refused at once");
        let b2 = tokio::time::timeout(Duration::from_secs(1), hashers.run(ip(2), || ())).await;
        assert_eq!(
            b2,
            Ok(Err(Busy)),
            "a client with one waiting takes nobody's place"
        );
        release.send(()).unwrap();
        let mut answers = Vec::new();
        for t in a {
            answers.push(t.await.unwrap());
        }
        // The newest two of 1's waiting jobs made room for 2 and 3.
        assert_eq!(answers, [Ok(()), Err(Busy), Err(Busy)]);
        assert_eq!(running.await.unwrap(), Ok(()));
        assert_eq!(b.await.unwrap(), Ok(()));
        assert_eq!(c.await.unwrap(), Ok(()));
        assert_eq!(held(&hashers), 0, "every place given back");
    }

    /// Attack round thirteen, the other half: with clients merely taken in
    /// turn, enough addresses each keeping a job queued made a newcomer wait
    /// past the deadline. A client with fewer than `FEW_HASHES` hashes lately
    /// goes before clients that had more, whatever they have queued.
    #[tokio::test]
    async fn clients_with_few_recent_hashes_go_before_the_rest() {
        let hashers = Hashers::new(1, 64, Duration::from_secs(10)).expect("threads");
        make_busy(&hashers, 1..=3).await;
        let (release, first) = occupy(&hashers, ip(8)).await;
        let order = Order::default();
        let mut tasks = Vec::new();
        for flooder in 1..=3 {
            for _ in 0..PER_CLIENT {
                tasks.push(queued_in(&hashers, &order, flooder).await);
            }
        }
        let mut newcomers = Vec::new();
        for newcomer in [9, 10] {
            newcomers.push(queued_in(&hashers, &order, newcomer).await);
        }
        release.send(()).unwrap();
        for t in newcomers.into_iter().chain(tasks) {
            assert_eq!(t.await.unwrap(), Ok(()));
        }
        assert_eq!(first.await.unwrap(), Ok(()));
        let order = order.lock().unwrap().clone();
        assert_eq!(order[..2], [9, 10], "the newcomers went first: {order:?}");
        // The rest in turn, one job each.
        assert_eq!(order[2..5], [1, 2, 3], "{order:?}");
    }

    /// Attack round thirteen, second try: 560 addresses keeping exactly one
    /// sign-in each waiting filled the queue with clients of one job each,
    /// so nobody had more to give up and every newcomer was refused. A
    /// client with few hashes lately takes the place of a job of one that
    /// had more; one that had more does not.
    #[tokio::test]
    async fn a_full_queue_of_busy_clients_makes_room_for_a_newcomer() {
        let hashers = Hashers::new(1, 2, Duration::from_secs(10)).expect("threads");
        make_busy(&hashers, 1..=3).await;
        let (release, first) = occupy(&hashers, ip(8)).await;
        let one = queued(&hashers, ip(1), || 1).await;
        let two = queued(&hashers, ip(2), || 2).await;
        let refused = |c| tokio::time::timeout(Duration::from_secs(1), hashers.run(ip(c), || 0));
        // Full of clients with one job each: another busy one is refused...
        assert_eq!(refused(3).await, Ok(Err(Busy)));
        // ...newcomers are not, while a busy client has a job waiting.
        let nine = queued(&hashers, ip(9), || 9).await;
        let ten = queued(&hashers, ip(10), || 10).await;
        let answer = |t| async { tokio::time::timeout(Duration::from_secs(1), t).await };
        let two = answer(two).await.expect("answered at once").unwrap();
        assert_eq!(two, Err(Busy), "the last busy one to queue made room");
        let one = answer(one).await.expect("answered at once").unwrap();
        assert_eq!(one, Err(Busy));
        // Only newcomers wait now: the next one is refused.
        assert_eq!(refused(11).await, Ok(Err(Busy)));
        release.send(()).unwrap();
        assert_eq!(first.await.unwrap(), Ok(()));
        assert_eq!(nine.await.unwrap(), Ok(9));
        assert_eq!(ten.await.unwrap(), Ok(10));
        assert_eq!(held(&hashers), 0, "every place given back");
    }

    /// Within the clients that had few hashes lately, the fewer go first and
    /// may take the place of the more: a flood's fresh addresses lose their
    /// head start after one hash each, not three.
    #[tokio::test]
    async fn the_fewer_recent_hashes_the_sooner_a_client_is_taken() {
        let hashers = Hashers::new(1, 3, Duration::from_secs(10)).expect("threads");
        for (client, hashes) in [(1, 2), (2, 1)] {
            for _ in 0..hashes {
                assert_eq!(hashers.run(ip(client), || ()).await, Ok(()));
            }
        }
        let (release, running) = occupy(&hashers, ip(8)).await;
        let order = Order::default();
        let mut tasks = Vec::new();
        for client in [1, 2, 3] {
            tasks.push(queued_in(&hashers, &order, client).await);
        }
        // Full: a client with no hashes takes the place of the one with two.
        let four = queued_in(&hashers, &order, 4).await;
        release.send(()).unwrap();
        assert_eq!(running.await.unwrap(), Ok(()));
        let answers: Vec<_> = {
            let mut answers = Vec::new();
            for t in tasks {
                answers.push(t.await.unwrap());
            }
            answers
        };
        assert_eq!(answers, [Err(Busy), Ok(()), Ok(())]);
        assert_eq!(four.await.unwrap(), Ok(()));
        assert_eq!(*order.lock().unwrap(), [3, 4, 2], "none before one hash");
    }
}
