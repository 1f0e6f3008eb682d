//! hyper's timer for HTTP/1, which it needs for one thing: the header-read
//! timeout, armed again for every request a connection may send next (so
//! an idle keep-alive connection is closed too). With tokio's timer that
//! costs every request a boxed timer-wheel entry, registered and removed
//! under the driver's lock, and two clock reads: about 800 instructions
//! (bench/instructions.sh), a twentieth of a bare request.
//!
//! This one is coarse: one task ticks every [`TICK`], reads the clock and
//! wakes the sleeps that are due; a sleep compares its deadline with the
//! last tick and, while waiting, keeps its waker in a slot of one shared
//! list. A deadline is met within a tick, late or early, which is all a
//! ten-second timeout against stalled clients needs.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
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
    epoch: Instant,
    /// Milliseconds from `epoch` to the last tick.
    ticked: AtomicU64,
    waiting: Mutex<Waiting>,
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
        let shared = Arc::new(Shared {
            epoch: clock(),
            ticked: AtomicU64::new(0),
            waiting: Mutex::default(),
        });
        tokio::spawn(tick(Arc::downgrade(&shared)));
        Self { shared }
    }
}

async fn tick(shared: Weak<Shared>) {
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let now = clock();
        let since = u64::try_from(now.duration_since(shared.epoch).as_millis()).unwrap_or(u64::MAX);
        shared.ticked.store(since, Ordering::Release);
        for (deadline, waker) in shared.waiting().slots.iter().flatten() {
            if *deadline <= now {
                waker.wake_by_ref();
            }
        }
    }
}

/// The clock, through tokio's, so that tests with paused time see it move.
fn clock() -> Instant {
    tokio::time::Instant::now().into_std()
}

impl Shared {
    fn now(&self) -> Instant {
        self.epoch + Duration::from_millis(self.ticked.load(Ordering::Acquire))
    }

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
            shared: self.shared.clone(),
            deadline,
            slot: None,
        })
    }

    /// The time of the last tick: no clock read per request.
    fn now(&self) -> Instant {
        self.shared.now()
    }
}

struct CoarseSleep {
    shared: Arc<Shared>,
    deadline: Instant,
    /// Where its waker is kept while it waits.
    slot: Option<usize>,
}

impl Future for CoarseSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.shared.now() >= this.deadline {
            this.leave();
            return Poll::Ready(());
        }
        let mut waiting = this.shared.waiting();
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
            let mut waiting = self.shared.waiting();
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
    async fn a_dropped_sleep_frees_its_slot_and_others_still_wake() {
        let timer = CoarseTimer::start();
        let mut first = timer.sleep(Duration::from_secs(60));
        // Waiting, so it holds a slot.
        assert!(tokio::time::timeout(Duration::from_secs(1), &mut first)
            .await
            .is_err());
        assert_eq!(timer.shared.waiting().slots.iter().flatten().count(), 1);
        drop(first);
        assert_eq!(timer.shared.waiting().slots.iter().flatten().count(), 0);
        let many: Vec<_> = (1..=20)
            .map(|i| timer.sleep(Duration::from_millis(100 * i)))
            .collect();
        let started = tokio::time::Instant::now();
        for sleep in many {
            sleep.await;
        }
        assert!(started.elapsed() <= Duration::from_secs(2) + 2 * TICK);
        assert_eq!(timer.shared.waiting().slots.iter().flatten().count(), 0);
        assert!(timer.shared.waiting().slots.len() <= 20);
    }
}
