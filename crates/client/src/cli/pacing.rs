//! Pacing of large applies to GitHub's secondary rate limits on content-creating requests
//! (80 a minute, 500 an hour): writes are sent in workflows, and a workflow waits until the
//! writes of the last minute and the last hour leave room for it.

use std::time::{Duration, Instant};

/// GitHub's secondary limits on content-creating requests.
pub(super) const WRITES_PER_MINUTE: usize = mgraph_deploy_api::WRITES_PER_MINUTE;
pub(super) const WRITES_PER_HOUR: usize = 500;

/// The most operations one `/execute` takes.
pub(super) const MAX_OPERATIONS: usize = 256;

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

/// The writes sent so far and the limits they are held to.
#[derive(Debug, Clone)]
pub(super) struct Pacer {
    per_minute: usize,
    per_hour: usize,
    /// When each workflow's writes were done (its answer), and how many; in time order.
    sent: Vec<(Instant, usize)>,
}

impl Pacer {
    pub(super) fn new(per_minute: usize, per_hour: usize) -> Self {
        Self {
            per_minute: per_minute.max(1),
            per_hour: per_hour.max(1),
            sent: Vec::new(),
        }
    }

    /// The most writes one workflow may carry.
    pub(super) fn batch_size(&self) -> usize {
        MAX_OPERATIONS.min(self.per_minute).min(self.per_hour)
    }

    /// `total` writes cut into workflows of at most [`Self::batch_size`], as even as possible.
    pub(super) fn batches(&self, total: usize) -> Vec<usize> {
        let count = total.div_ceil(self.batch_size()).max(1);
        (0..count)
            .map(|i| total / count + usize::from(i < total % count))
            .collect()
    }

    /// How long to wait at `now` before `writes` more may start.
    pub(super) fn wait(&self, now: Instant, writes: usize) -> Duration {
        [(MINUTE, self.per_minute), (HOUR, self.per_hour)]
            .into_iter()
            .map(|(window, limit)| self.ready_at(now, writes, window, limit))
            .max()
            .unwrap_or(now)
            .saturating_duration_since(now)
    }

    /// The earliest time from `now` at which the writes inside `window` plus `writes` fit `limit`.
    fn ready_at(&self, now: Instant, writes: usize, window: Duration, limit: usize) -> Instant {
        let mut inside: Vec<&(Instant, usize)> = self
            .sent
            .iter()
            .filter(|(at, _)| *at + window > now)
            .collect();
        let mut count: usize = inside.iter().map(|(_, n)| n).sum();
        let mut ready = now;
        inside.reverse();
        while count + writes > limit {
            let Some((at, n)) = inside.pop() else { break };
            ready = ready.max(*at + window);
            count -= n;
        }
        ready
    }

    /// Records that `writes` were done by `at`.
    pub(super) fn record(&mut self, at: Instant, writes: usize) {
        self.sent.push((at, writes));
    }

    /// How long `total` writes take at these limits if each workflow took no time itself.
    pub(super) fn estimate(&self, total: usize) -> Duration {
        let start = Instant::now();
        let mut pacer = Self::new(self.per_minute, self.per_hour);
        let mut now = start;
        for writes in self.batches(total) {
            now += pacer.wait(now, writes);
            pacer.record(now, writes);
        }
        now - start
    }
}

/// `2 h 05 min`, `3 min 20 s`, `45 s`.
pub(super) fn human(duration: Duration) -> String {
    let secs = duration.as_secs();
    match (secs / 3600, secs % 3600 / 60, secs % 60) {
        (0, 0, s) => format!("{s} s"),
        (0, m, 0) => format!("{m} min"),
        (0, m, s) => format!("{m} min {s:02} s"),
        (h, m, _) => format!("{h} h {m:02} min"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends `total` writes as the apply does, each workflow taking `took`; returns the send times.
    fn simulate(total: usize, took: Duration) -> Vec<(Instant, usize)> {
        let mut pacer = Pacer::new(WRITES_PER_MINUTE, WRITES_PER_HOUR);
        let mut now = Instant::now();
        let mut sent = Vec::new();
        for writes in pacer.batches(total) {
            now += pacer.wait(now, writes);
            sent.push((now, writes));
            now += took;
            pacer.record(now, writes);
        }
        sent
    }

    fn most_in_any_window(sent: &[(Instant, usize)], window: Duration) -> usize {
        sent.iter()
            .map(|(start, _)| {
                sent.iter()
                    .filter(|(at, _)| *at >= *start && *at < *start + window)
                    .map(|(_, n)| n)
                    .sum()
            })
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn no_minute_holds_more_than_80_writes_and_no_hour_more_than_500() {
        for total in [1, 80, 81, 256, 257, 500, 501, 1234] {
            for took in [Duration::ZERO, Duration::from_secs(7)] {
                let sent = simulate(total, took);
                assert_eq!(sent.iter().map(|(_, n)| n).sum::<usize>(), total);
                assert!(most_in_any_window(&sent, MINUTE) <= 80, "{total} writes");
                assert!(most_in_any_window(&sent, HOUR) <= 500, "{total} writes");
                assert!(sent.iter().all(|(_, n)| *n <= 80));
            }
        }
    }

    #[test]
    fn a_small_apply_is_one_workflow_sent_at_once_and_a_large_one_is_estimated() {
        let pacer = Pacer::new(WRITES_PER_MINUTE, WRITES_PER_HOUR);
        assert_eq!(pacer.batches(6), vec![6]);
        assert_eq!(pacer.estimate(80), Duration::ZERO);
        assert_eq!(pacer.batches(81), vec![41, 40]);
        assert_eq!(pacer.estimate(160), MINUTE);
        // 501 writes: 7 workflows of about 72; the 7th must wait an hour after the 1st.
        assert_eq!(pacer.estimate(501), HOUR);
        assert_eq!(human(HOUR + MINUTE * 5), "1 h 05 min");
        let raised = Pacer::new(1000, 10_000);
        assert_eq!(
            raised.batches(300),
            vec![150, 150],
            "never more than 256 in one workflow"
        );
    }
}
