//! hyper's timer for HTTP/1, which it needs for one thing: the header-read
//! timeout, armed again for every request a connection may send next (so
//! an idle keep-alive connection is closed too). With tokio's timer that
//! costs every request a boxed timer-wheel entry, registered and removed
//! under the driver's lock, and two clock reads: about 800 instructions
//! (bench/instructions.sh), a twentieth of a bare request.
//!
//! This one is coarse: one task ticks every [`TICK`], reads the clock and
//! wakes the sleeps that are due; a sleep compares its deadline with the
//! last tick and, while waiting, keeps its waker in a slot of a list. A
//! deadline is met within a tick, late or early, which is all a ten-second
//! timeout against stalled clients needs. Each thread that makes sleeps
//! (each tokio worker) has a list of its own, behind its own lock and
//! reference count: with one for all, every request's sleep took a lock
//! and a count that the other workers were taking too.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use hyper::rt::{Sleep, Timer};

/// How often the clock is read and due sleeps are woken.
pub const TICK: Duration = Duration::from_millis(250);

#[derive(Clone)]
pub struct CoarseTimer {
    shared: Arc<Shared>,
}

struct Shared {
    clock: Arc<Clock>,
    lists: [Arc<List>; LISTS],
}

/// The time as of the last tick.
struct Clock {
    epoch: Instant,
    /// Milliseconds from `epoch` to the last tick.
    ticked: AtomicU64,
}

/// Lists of waiting sleeps; a thread's sleeps use the list of its turn.
const LISTS: usize = 16;

/// One list of waiting sleeps, and the clock they read.
struct List {
    clock: Arc<Clock>,
    waiting: Mutex<Waiting>,
}

/// Which list the sleeps made on this thread use: threads take turns.
fn list_of_this_thread() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static LIST: usize = NEXT.fetch_add(1, Ordering::Relaxed) % LISTS;
    }
    LIST.with(|list| *list)
}

/// The wakers of the sleeps that are waiting, by slot.
#[derive(Default)]
struct Waiting {
    slots: Vec<Option<(Instant, Waker)>>,
    free: Vec<usize>,
}

impl CoarseTimer {
    /// A timer ticking on the current tokio runtime for as long as it, or
    /// one of its sleeps, is alive.
    pub fn start() -> Self {
        let clock = Arc::new(Clock {
            epoch: clock(),
            ticked: AtomicU64::new(0),
        });
        let lists = std::array::from_fn(|_| {
            Arc::new(List {
                clock: clock.clone(),
                waiting: Mutex::default(),
            })
        });
        let shared = Arc::new(Shared { clock, lists });
        tokio::spawn(tick(
            Arc::downgrade(&shared),
            shared.clock.clone(),
            shared.lists.clone(),
        ));
        Self { shared }
    }
}

/// Ticks until the timer is gone and no sleep of it is left.
async fn tick(timer: Weak<Shared>, time: Arc<Clock>, lists: [Arc<List>; LISTS]) {
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        // Once the timer is gone, a list counted more than once (here) is
        // held by a sleep that still has to be woken.
        if timer.strong_count() == 0 && lists.iter().all(|list| Arc::strong_count(list) == 1) {
            return;
        }
        let now = clock();
        let since = u64::try_from(now.duration_since(time.epoch).as_millis()).unwrap_or(u64::MAX);
        time.ticked.store(since, Ordering::Release);
        for list in &lists {
            for (deadline, waker) in list.waiting().slots.iter().flatten() {
                if *deadline <= now {
                    waker.wake_by_ref();
                }
            }
        }
    }
}

/// The clock, through tokio's, so that tests with paused time see it move.
fn clock() -> Instant {
    tokio::time::Instant::now().into_std()
}

impl Clock {
    fn now(&self) -> Instant {
        self.epoch + Duration::from_millis(self.ticked.load(Ordering::Acquire))
    }
}

impl List {
    fn waiting(&self) -> MutexGuard<'_, Waiting> {
        // A panic while holding it cannot leave the list inconsistent.
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Timer for CoarseTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        self.sleep_until(self.now() + duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        Box::pin(CoarseSleep {
            list: self.shared.lists[list_of_this_thread()].clone(),
            deadline,
            slot: None,
        })
    }

    /// The time of the last tick: no clock read per request.
    fn now(&self) -> Instant {
        self.shared.clock.now()
    }
}

struct CoarseSleep {
    list: Arc<List>,
    deadline: Instant,
    /// Where its waker is kept while it waits.
    slot: Option<usize>,
}

impl Future for CoarseSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.list.clock.now() >= this.deadline {
            this.leave();
            return Poll::Ready(());
        }
        let mut waiting = this.list.waiting();
        match this.slot {
            Some(slot) => {
                if let Some((_, waker)) = &mut waiting.slots[slot] {
                    if !waker.will_wake(cx.waker()) {
                        *waker = cx.waker().clone();
                    }
                }
            }
            None => {
                let entry = Some((this.deadline, cx.waker().clone()));
                let slot = match waiting.free.pop() {
                    Some(slot) => {
                        waiting.slots[slot] = entry;
                        slot
                    }
                    None => {
                        waiting.slots.push(entry);
                        waiting.slots.len() - 1
                    }
                };
                this.slot = Some(slot);
            }
        }
        Poll::Pending
    }
}

impl Sleep for CoarseSleep {}

impl CoarseSleep {
    fn leave(&mut self) {
        if let Some(slot) = self.slot.take() {
            let mut waiting = self.list.waiting();
            waiting.slots[slot] = None;
            waiting.free.push(slot);
        }
    }
}

impl Drop for CoarseSleep {
    fn drop(&mut self) {
        self.leave();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting(timer: &CoarseTimer) -> usize {
        let lists = timer.shared.lists.iter();
        lists
            .map(|l| l.waiting().slots.iter().flatten().count())
            .sum()
    }

    #[tokio::test(start_paused = true)]
    async fn sleeps_end_within_a_tick_of_their_deadline() {
        let timer = CoarseTimer::start();
        let started = tokio::time::Instant::now();
        timer.sleep(Duration::from_secs(2)).await;
        let took = started.elapsed();
        assert!(took >= Duration::from_secs(2) - TICK, "{took:?}");
        assert!(took <= Duration::from_secs(2) + 2 * TICK, "{took:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_sleep_outliving_its_timer_still_ends() {
        let timer = CoarseTimer::start();
        let sleep = timer.sleep(Duration::from_secs(2));
        drop(timer);
        let started = tokio::time::Instant::now();
        tokio::time::timeout(Duration::from_secs(5), sleep)
            .await
            .expect("the sleep ended");
        assert!(started.elapsed() >= Duration::from_secs(2) - TICK);
    }

    #[tokio::test(start_paused = true)]
    async fn a_sleep_waits_in_the_list_of_the_thread_that_made_it() {
        let timer = CoarseTimer::start();
        let here = list_of_this_thread();
        let mut sleep = timer.sleep(Duration::from_secs(60));
        assert!(tokio::time::timeout(Duration::from_secs(1), &mut sleep)
            .await
            .is_err());
        assert_eq!(
            timer.shared.lists[here]
                .waiting()
                .slots
                .iter()
                .flatten()
                .count(),
            1
        );
        assert_eq!(waiting(&timer), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_sleep_frees_its_slot_and_others_still_wake() {
        let timer = CoarseTimer::start();
        let mut first = timer.sleep(Duration::from_secs(60));
        // Waiting, so it holds a slot.
        assert!(tokio::time::timeout(Duration::from_secs(1), &mut first)
            .await
            .is_err());
        assert_eq!(waiting(&timer), 1);
        drop(first);
        assert_eq!(waiting(&timer), 0);
        let many: Vec<_> = (1..=20)
            .map(|i| timer.sleep(Duration::from_millis(100 * i)))
            .collect();
        let started = tokio::time::Instant::now();
        for sleep in many {
            sleep.await;
        }
        assert!(started.elapsed() <= Duration::from_secs(2) + 2 * TICK);
        assert_eq!(waiting(&timer), 0);
        assert!(
            timer
                .shared
                .lists
                .iter()
                .map(|l| l.waiting().slots.len())
                .sum::<usize>()
                <= 20
        );
    }
}
