//! What queueing theory predicts for a queue: Erlang A (M/M/n+M, Palm's model with
//! abandonment), which is Erlang C when callers never hang up. Used to check that the
//! simulator's figures are credible, and useful wherever MONTI wants to say what staffing a
//! queue needs.
//!
//! The model: contacts arrive as a Poisson process at rate λ, are served first come first
//! served by `n` agents with exponential handle times of rate μ, and a waiting caller hangs up
//! after an exponential patience of rate θ. The number of contacts in the system is a birth and
//! death process; its stationary distribution gives the chance of waiting and of abandoning,
//! and a contact arriving behind `j` others in the line follows a small chain of its own
//! (the line ahead shrinks at rate nμ + jθ, it hangs up at rate θ) whose transient gives the
//! service level. Everything is computed numerically, with no closed forms to get wrong.

/// A queue as Erlang sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Queue {
    /// Arrivals per second (λ).
    pub arrivals_per_sec: f64,
    /// Mean handle time, seconds (1/μ).
    pub handle_secs: f64,
    /// Mean patience, seconds (1/θ); infinite for Erlang C.
    pub patience_secs: f64,
    /// Agents (n).
    pub agents: u32,
}

/// The prediction for a queue.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Prediction {
    /// Share of contacts that have to wait at all.
    pub wait_chance: f64,
    /// Share of contacts abandoned.
    pub abandon_rate: f64,
    /// Share of contacts answered within the target.
    pub answered_in_target: f64,
    /// Mean wait of answered contacts, seconds.
    pub asa_secs: f64,
    /// Agents' busy share.
    pub occupancy: f64,
}

impl Prediction {
    /// Answered within target over answered and abandoned, as [`super::model::Figures`]
    /// counts it (every contact of a stationary queue is eventually one or the other).
    pub fn service_level(&self) -> f64 {
        self.answered_in_target
    }
}

/// The prediction for `queue` with a service-level target of `target_secs`.
///
/// # Panics
/// When the queue cannot be stable: no patience limit and at least as much work arriving as the
/// agents can do (Erlang C needs λ < nμ).
pub fn predict(queue: Queue, target_secs: f64) -> Prediction {
    let lambda = queue.arrivals_per_sec;
    let mu = 1.0 / queue.handle_secs;
    let theta = if queue.patience_secs.is_finite() {
        1.0 / queue.patience_secs
    } else {
        0.0
    };
    let n = queue.agents as usize;
    assert!(
        theta > 0.0 || lambda < n as f64 * mu,
        "an Erlang C queue with λ ≥ nμ has no steady state"
    );
    let pi = stationary(lambda, mu, theta, n);
    let wait_chance: f64 = pi[n.min(pi.len())..].iter().sum();
    let abandoned_per_sec: f64 = (pi.iter().enumerate().skip(n + 1))
        .map(|(k, p)| p * (k - n) as f64 * theta)
        .sum();
    let busy: f64 = (pi.iter().enumerate())
        .map(|(k, p)| p * k.min(n) as f64)
        .sum();
    // A contact that finds k ≥ n in the system has j = k - n ahead of it in the line.
    let ahead = &pi[n.min(pi.len())..];
    let tagged = Tagged::new(n as f64 * mu, theta, ahead.len());
    let served_in_target = tagged.served_by(target_secs);
    let mut answered = pi[..n.min(pi.len())].iter().sum::<f64>();
    let mut answered_in_target = answered;
    let mut answered_wait = 0.0;
    for (j, p) in ahead.iter().enumerate() {
        answered += p * tagged.served[j];
        answered_in_target += p * served_in_target[j];
        answered_wait += p * tagged.served_wait[j];
    }
    Prediction {
        wait_chance,
        abandon_rate: abandoned_per_sec / lambda,
        answered_in_target,
        asa_secs: answered_wait / answered.max(f64::MIN_POSITIVE),
        occupancy: busy / n.max(1) as f64,
    }
}

/// The stationary distribution of the number of contacts in the system, cut where the rest
/// is negligible.
fn stationary(lambda: f64, mu: f64, theta: f64, n: usize) -> Vec<f64> {
    // Unnormalised, kept in range by rescaling as it grows.
    let mut pi = vec![1.0_f64];
    let mut k = 0;
    loop {
        k += 1;
        let deaths = mu * k.min(n) as f64 + theta * k.saturating_sub(n) as f64;
        let next = pi[k - 1] * lambda / deaths;
        pi.push(next);
        if next > 1e100 {
            for p in &mut pi {
                *p /= 1e100;
            }
        }
        let total: f64 = pi.iter().sum();
        if k > n && next < total * 1e-13 {
            break;
        }
        assert!(k < 10_000_000, "the distribution does not settle");
    }
    let total: f64 = pi.iter().sum();
    pi.iter().map(|p| p / total).collect()
}

/// A contact in the line with `j` ahead: the line ahead moves at rate `front + j·theta`
/// (an agent frees, or someone ahead hangs up), at the head it is answered at rate `front`,
/// and it hangs up at rate `theta` wherever it is.
struct Tagged {
    front: f64,
    theta: f64,
    /// Chance of being answered, per `j`.
    served: Vec<f64>,
    /// Expected wait times the indicator of being answered, per `j`.
    served_wait: Vec<f64>,
}

impl Tagged {
    fn new(front: f64, theta: f64, len: usize) -> Tagged {
        let mut served = Vec::with_capacity(len);
        let mut served_wait = Vec::with_capacity(len);
        for j in 0..len {
            // Leaving state j: forward (or answered at the head) at `forward`, hanging up at θ.
            let forward = front + j as f64 * theta;
            let rate = forward + theta;
            let p_forward = forward / rate;
            let (s, m) = if j == 0 {
                (p_forward, p_forward / rate)
            } else {
                let (s_prev, m_prev) = (served[j - 1], served_wait[j - 1]);
                (p_forward * s_prev, p_forward * (s_prev / rate + m_prev))
            };
            served.push(s);
            served_wait.push(m);
        }
        Tagged {
            front,
            theta,
            served,
            served_wait,
        }
    }

    /// The chance of being answered within `t` seconds, per `j` (the backward equations,
    /// integrated with fourth-order Runge-Kutta).
    fn served_by(&self, t: f64) -> Vec<f64> {
        let len = self.served.len();
        let derivative = |f: &[f64], out: &mut [f64]| {
            for j in 0..len {
                let forward = self.front + j as f64 * self.theta;
                let next = if j == 0 { 1.0 } else { f[j - 1] };
                out[j] = forward * (next - f[j]) - self.theta * f[j];
            }
        };
        // Steps small against the fastest rate in the chain.
        let fastest = self.front + len as f64 * self.theta + self.theta;
        let steps = ((t * fastest * 4.0).ceil() as usize).clamp(200, 2_000_000);
        let h = t / steps as f64;
        let mut f = vec![0.0; len];
        let (mut k1, mut k2, mut k3, mut k4) = (
            vec![0.0; len],
            vec![0.0; len],
            vec![0.0; len],
            vec![0.0; len],
        );
        let mut tmp = vec![0.0; len];
        for _ in 0..steps {
            derivative(&f, &mut k1);
            for j in 0..len {
                tmp[j] = f[j] + h / 2.0 * k1[j];
            }
            derivative(&tmp, &mut k2);
            for j in 0..len {
                tmp[j] = f[j] + h / 2.0 * k2[j];
            }
            derivative(&tmp, &mut k3);
            for j in 0..len {
                tmp[j] = f[j] + h * k3[j];
            }
            derivative(&tmp, &mut k4);
            for j in 0..len {
                f[j] += h / 6.0 * (k1[j] + 2.0 * k2[j] + 2.0 * k3[j] + k4[j]);
            }
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Erlang C's closed form, to check the numerical route against.
    fn erlang_c(lambda: f64, mu: f64, n: u32, target: f64) -> (f64, f64, f64) {
        let a = lambda / mu;
        let mut term = 1.0;
        let mut sum = 1.0;
        for k in 1..n {
            term *= a / k as f64;
            sum += term;
        }
        let last = term * a / n as f64 * n as f64 / (n as f64 - a);
        let pw = last / (sum + last);
        let asa = pw / (n as f64 * mu - lambda);
        let sl = 1.0 - pw * (-(n as f64 * mu - lambda) * target).exp();
        (pw, asa, sl)
    }

    #[test]
    fn without_abandonment_it_is_erlang_c() {
        // The textbook case: 100 calls an hour... here 360 an hour of 3 minutes, 20 agents.
        let queue = Queue {
            arrivals_per_sec: 0.1,
            handle_secs: 180.0,
            patience_secs: f64::INFINITY,
            agents: 20,
        };
        let prediction = predict(queue, 20.0);
        let (pw, asa, sl) = erlang_c(0.1, 1.0 / 180.0, 20, 20.0);
        assert!(
            (prediction.wait_chance - pw).abs() < 1e-9,
            "{prediction:?} {pw}"
        );
        // ASA over answered is the mean wait here: everyone is answered.
        assert!(
            (prediction.asa_secs - asa).abs() < 1e-6,
            "{prediction:?} {asa}"
        );
        assert!(
            (prediction.service_level() - sl).abs() < 1e-6,
            "{prediction:?} {sl}"
        );
        assert_eq!(prediction.abandon_rate, 0.0);
        assert!((prediction.occupancy - 0.9).abs() < 1e-9);
    }

    #[test]
    fn patience_lowers_waits_and_costs_abandons() {
        let base = Queue {
            arrivals_per_sec: 0.1,
            handle_secs: 180.0,
            patience_secs: f64::INFINITY,
            agents: 19,
        };
        let patient = predict(base, 20.0);
        let impatient = predict(
            Queue {
                patience_secs: 60.0,
                ..base
            },
            20.0,
        );
        assert!(impatient.asa_secs < patient.asa_secs);
        assert!(impatient.abandon_rate > 0.01 && impatient.abandon_rate < 0.2);
        assert!(impatient.answered_in_target > 0.0 && impatient.answered_in_target < 1.0);
        // Overloaded: stable only through abandonment.
        let overloaded = predict(
            Queue {
                arrivals_per_sec: 0.2,
                patience_secs: 60.0,
                ..base
            },
            20.0,
        );
        assert!(overloaded.abandon_rate > 0.3, "{overloaded:?}");
        assert!(overloaded.occupancy > 0.99, "{overloaded:?}");
    }
}
