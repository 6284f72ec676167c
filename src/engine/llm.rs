//! LLM measurements of one worker thread, merged like the HTTP tally: TTFT, time per output
//! token, inter-token latency, tokens per second, usage, cost, Retry-After pauses and, for a
//! fallback chain, what each model served. What a response *means* (its deltas and usage) is
//! the provider room's; this file only counts what the decoder measured.

use std::time::Duration;

use hdrhistogram::Histogram;

use crate::config::{LlmPlan, Price};
use crate::provider::{Measurement, RateLimits, Usage, ratelimit};
use crate::record::{
    CostRecord, HeadroomRecord, LatencySummary, LlmRecord, RetryAfterRecord, TierRecord, micros,
    new_histogram,
};

/// Cost histogram unit: nano-dollars, so a $0.00001 request and a $50 one both fit at three
/// significant digits.
const NANO_USD: f64 = 1e9;

fn cost_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("constant bounds are valid")
}

/// One model of a fallback chain, as measured by one thread.
#[derive(Clone)]
pub struct TierStats {
    pub served: u64,
    pub failed_over: u64,
    pub latency: Histogram<u64>,
    pub lost_us: u64,
}

/// LLM measurements of one thread, merged like `Stats`.
#[derive(Clone)]
pub struct LlmStats {
    pub ttft: Histogram<u64>,
    pub tpot: Histogram<u64>,
    pub itl: Histogram<u64>,
    pub per_token: Histogram<u64>,
    pub tps_sum: f64,
    pub tps_n: u64,
    pub usage: Usage,
    pub estimated: u64,
    pub cost: Histogram<u64>,
    pub cost_total: f64,
    pub unpriced: u64,
    pub retry_after_n: u64,
    pub retry_after_sum: f64,
    pub retry_after_max: f64,
    pub tiers: Vec<TierStats>,
    /// Per kind of `ratelimit::KINDS`: the lowest remaining count and the highest limit seen.
    pub headroom: [(Option<u64>, Option<u64>); 4],
}

impl LlmStats {
    pub fn new(tiers: usize) -> LlmStats {
        LlmStats {
            ttft: new_histogram(),
            tpot: new_histogram(),
            itl: new_histogram(),
            per_token: new_histogram(),
            tps_sum: 0.0,
            tps_n: 0,
            usage: Usage::default(),
            estimated: 0,
            cost: cost_histogram(),
            cost_total: 0.0,
            unpriced: 0,
            retry_after_n: 0,
            retry_after_sum: 0.0,
            retry_after_max: 0.0,
            tiers: (0..tiers)
                .map(|_| TierStats {
                    served: 0,
                    failed_over: 0,
                    latency: new_histogram(),
                    lost_us: 0,
                })
                .collect(),
            headroom: [(None, None); 4],
        }
    }

    /// A response's rate-limit headers: keep the lowest remaining and the highest limit.
    pub fn record_rate_limits(&mut self, seen: &RateLimits) {
        for (mine, theirs) in self.headroom.iter_mut().zip(&seen.0) {
            merge_headroom(mine, theirs);
        }
    }

    /// One successful request: `e2e` from its start to the last byte, served by model `tier`
    /// after `lost` in failed attempts on earlier models.
    pub fn record_success(
        &mut self,
        m: &Measurement,
        e2e: Duration,
        tier: usize,
        lost: Duration,
        price: Option<&Price>,
    ) {
        let out = m.usage.output;
        if let Some(ttft) = m.ttft {
            let _ = self.ttft.record(micros(ttft));
            if out > 1 {
                let tpot = e2e.saturating_sub(ttft) / (out - 1).min(u32::MAX as u64) as u32;
                let _ = self.tpot.record(micros(tpot));
            }
        }
        for w in m.content_at.windows(2) {
            let _ = self.itl.record(micros(w[1].saturating_sub(w[0])));
        }
        if out > 0 {
            let _ = self
                .per_token
                .record(micros(e2e / out.min(u32::MAX as u64) as u32));
            self.tps_sum += out as f64 / e2e.as_secs_f64().max(1e-9);
            self.tps_n += 1;
        }
        self.usage.input += m.usage.input;
        self.usage.output += out;
        self.usage.cache_read += m.usage.cache_read;
        self.usage.cache_write += m.usage.cache_write;
        if m.estimated {
            self.estimated += 1;
        }
        match price {
            Some(p) => {
                let usd = p.cost(&m.usage);
                self.cost_total += usd;
                let _ = self
                    .cost
                    .record(((usd * NANO_USD).round() as u64).clamp(1, 100_000_000_000));
            }
            None => self.unpriced += 1,
        }
        if let Some(t) = self.tiers.get_mut(tier) {
            t.served += 1;
            let _ = t.latency.record(micros(e2e));
            t.lost_us += lost.as_micros() as u64;
        }
    }

    pub fn record_retry_after(&mut self, secs: f64) {
        self.retry_after_n += 1;
        self.retry_after_sum += secs;
        self.retry_after_max = self.retry_after_max.max(secs);
    }

    pub fn merge(&mut self, o: &LlmStats) {
        for (a, b) in [
            (&mut self.ttft, &o.ttft),
            (&mut self.tpot, &o.tpot),
            (&mut self.itl, &o.itl),
            (&mut self.per_token, &o.per_token),
            (&mut self.cost, &o.cost),
        ] {
            let _ = a.add(b);
        }
        self.tps_sum += o.tps_sum;
        self.tps_n += o.tps_n;
        self.usage.input += o.usage.input;
        self.usage.output += o.usage.output;
        self.usage.cache_read += o.usage.cache_read;
        self.usage.cache_write += o.usage.cache_write;
        self.estimated += o.estimated;
        self.cost_total += o.cost_total;
        self.unpriced += o.unpriced;
        self.retry_after_n += o.retry_after_n;
        self.retry_after_sum += o.retry_after_sum;
        self.retry_after_max = self.retry_after_max.max(o.retry_after_max);
        for (mine, theirs) in self.headroom.iter_mut().zip(&o.headroom) {
            merge_headroom(mine, theirs);
        }
        for (a, b) in self.tiers.iter_mut().zip(&o.tiers) {
            a.served += b.served;
            a.failed_over += b.failed_over;
            let _ = a.latency.add(&b.latency);
            a.lost_us += b.lost_us;
        }
    }

    /// Put the histograms a saved record keeps as summaries only (TPOT, inter-token latency,
    /// cost) into `rec`, for a shard's document (`gate merge` adds them exactly).
    pub fn full_histograms(&self, rec: &mut LlmRecord) {
        rec.tpot = LatencySummary::from_histogram(&self.tpot);
        rec.itl = LatencySummary::from_histogram(&self.itl);
        if let Some(cost) = &mut rec.cost {
            cost.histogram = crate::record::encode_histogram(&self.cost);
        }
    }

    /// The record of one endpoint; `elapsed_s` is its measured time.
    pub fn to_record(&self, plan: &LlmPlan, elapsed_s: f64) -> LlmRecord {
        let priced = self.cost.len();
        let cost = (priced > 0).then(|| {
            let usd = |q: f64| self.cost.value_at_quantile(q) as f64 / NANO_USD;
            let mean = self.cost_total / priced as f64;
            CostRecord {
                total_usd: self.cost_total,
                p50_usd: usd(0.5),
                p95_usd: usd(0.95),
                per_1k_usd: mean * 1000.0,
                monthly_usd: plan.daily_requests.map(|d| mean * d as f64 * 30.0),
                daily_requests: plan.daily_requests,
                unpriced_requests: self.unpriced,
                histogram: String::new(),
            }
        });
        LlmRecord {
            provider: plan.provider.name().into(),
            models: plan.models.clone(),
            fallback: plan.fallback,
            stream: plan.stream,
            ttft: LatencySummary::from_histogram(&self.ttft),
            tpot: LatencySummary::percentiles_of(&self.tpot),
            itl: LatencySummary::percentiles_of(&self.itl),
            time_per_token: LatencySummary::from_histogram(&self.per_token),
            output_tps_mean: if self.tps_n > 0 {
                self.tps_sum / self.tps_n as f64
            } else {
                0.0
            },
            output_tps_aggregate: self.usage.output as f64 / elapsed_s.max(1e-9),
            input_tokens: self.usage.input,
            output_tokens: self.usage.output,
            cache_read_tokens: self.usage.cache_read,
            cache_write_tokens: self.usage.cache_write,
            estimated_requests: self.estimated,
            cost,
            retry_after: (self.retry_after_n > 0).then(|| RetryAfterRecord {
                count: self.retry_after_n,
                mean_s: self.retry_after_sum / self.retry_after_n as f64,
                max_s: self.retry_after_max,
            }),
            rate_limits: self
                .headroom
                .iter()
                .zip(ratelimit::KINDS)
                .filter_map(|(&(remaining, limit), kind)| {
                    Some(HeadroomRecord {
                        kind: kind.into(),
                        remaining_min: remaining?,
                        limit,
                    })
                })
                .collect(),
            tiers: if plan.fallback {
                self.tiers
                    .iter()
                    .zip(&plan.models)
                    .map(|(t, model)| {
                        let ms = |q: f64| {
                            if t.latency.is_empty() {
                                0.0
                            } else {
                                t.latency.value_at_quantile(q) as f64 / 1000.0
                            }
                        };
                        TierRecord {
                            model: model.clone(),
                            served: t.served,
                            failed_over: t.failed_over,
                            p50_ms: ms(0.5),
                            p95_ms: ms(0.95),
                            failover_ms_mean: if t.served > 0 {
                                t.lost_us as f64 / 1000.0 / t.served as f64
                            } else {
                                0.0
                            },
                        }
                    })
                    .collect()
            } else {
                Vec::new()
            },
        }
    }
}

fn merge_headroom(mine: &mut (Option<u64>, Option<u64>), theirs: &(Option<u64>, Option<u64>)) {
    mine.0 = match (mine.0, theirs.0) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    mine.1 = mine.1.max(theirs.1);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::Provider;

    #[test]
    fn one_request_gives_tpot_itl_tok_s_and_cost_as_defined() {
        let ms = Duration::from_millis;
        let m = Measurement {
            ttft: Some(ms(300)),
            content_at: vec![ms(300), ms(310), ms(320), ms(330)],
            usage: Usage {
                input: 1000,
                output: 4,
                cache_read: 2000,
                cache_write: 0,
            },
            estimated: false,
        };
        let price = Price {
            input: 3.0,
            output: 15.0,
            cache_read: 0.3,
            cache_write: 3.75,
        };
        let mut s = LlmStats::new(1);
        s.record_success(&m, ms(340), 0, Duration::ZERO, Some(&price));
        // TPOT = (E2E − TTFT) / (tokens − 1) = 40 ms / 3.
        let tpot = s.tpot.value_at_quantile(0.5);
        assert!((13_320..=13_340).contains(&tpot), "{tpot}");
        assert_eq!(s.itl.len(), 3);
        assert_eq!(s.itl.value_at_quantile(1.0) / 100, 100, "10 ms gaps");
        assert_eq!(
            s.per_token.value_at_quantile(0.5) / 100,
            850,
            "85 ms per token"
        );
        assert!((s.tps_sum - 4.0 / 0.34).abs() < 1e-9);
        // 1000 × $3 + 4 × $15 + 2000 × $0.3 per million.
        assert!((s.cost_total - 0.00366).abs() < 1e-12);
        let plan = LlmPlan {
            provider: Provider::Anthropic,
            models: vec!["m".into()],
            fallback: false,
            bodies: vec![],
            headers: vec![],
            stream: true,
            max_tokens: 8,
            timeouts: crate::config::LlmTimeouts {
                connect: ms(1),
                first_token: ms(1),
                between_tokens: ms(1),
            },
            prices: vec![Some(price)],
            daily_requests: Some(1000),
            hops: vec![None],
        };
        let r = s.to_record(&plan, 2.0);
        assert_eq!(r.output_tokens, 4);
        assert!(
            (r.output_tps_aggregate - 2.0).abs() < 1e-9,
            "4 tokens in 2 s"
        );
        let c = r.cost.unwrap();
        assert!((c.per_1k_usd - 3.66).abs() < 1e-9);
        assert!((c.monthly_usd.unwrap() - 0.00366 * 1000.0 * 30.0).abs() < 1e-9);
        assert!((c.p50_usd - 0.00366).abs() < 0.00001);
    }
}
