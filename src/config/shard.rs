//! Shards: one of N machines sending its share of a plan's load (`--shard I/N`, or
//! `--shard k8s/N` inside a Kubernetes Indexed Job). The split is a pure function of the plan, so
//! every shard computes the same shares and `gate merge` can add them back up exactly.
//!
//! - closed model: `users / N`, the remainder spread over the first shards (10 over 4 → 3,3,2,2);
//! - open model: `rate / N`, and `max_in_flight / N` rounded up (at least 1);
//! - `requests:` (the cap on measured requests): split like users;
//! - ramps: each step is a scenario of its own, so each step's users are split.
//!
//! A scenario whose share is 0 (1 user over 4 shards) is left out of that shard's plan and named
//! in [`ShardPlan::idle`], so the shard says so and the merge knows it was not forgotten.
//! Scenario hashes are those of the whole definition: every shard's record matches the unsharded
//! suite, and a merged run compares with ordinary runs.

use super::plan::{LoadModel, Plan, ScenarioPlan};

/// The variable a Kubernetes Indexed Job sets in each pod (0-based).
pub const K8S_INDEX_VAR: &str = "JOB_COMPLETION_INDEX";

/// Shard `index` (1-based) of `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// `I/N` (1 ≤ I ≤ N), or `k8s/N`: the index from `JOB_COMPLETION_INDEX` (0-based) plus one.
    /// The error says what is wrong, for the caller to put after the flag's (or variable's) name.
    pub fn parse(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Shard, ShardError> {
        let usage = |m: String| ShardError::Flag(m);
        let (i, n) = text.trim().split_once('/').ok_or_else(|| {
            usage(format!(
                "`{text}` is not I/N (e.g. 2/4: the second of four shards) or k8s/N"
            ))
        })?;
        let count: u32 = n.trim().parse().ok().filter(|&n| n >= 1).ok_or_else(|| {
            usage(format!(
                "`{text}`: N must be a whole number of shards, 1 or more"
            ))
        })?;
        let index = if i.trim().eq_ignore_ascii_case("k8s") {
            let raw = env(K8S_INDEX_VAR).ok_or_else(|| {
                ShardError::Variable(format!(
                    "is not set (--shard k8s/{count} reads it; a Kubernetes Indexed Job sets it in each pod)"
                ))
            })?;
            let zero_based: u32 = raw
                .trim()
                .parse()
                .map_err(|_| ShardError::Variable(format!("`{raw}` is not a whole number")))?;
            if zero_based >= count {
                return Err(ShardError::Variable(format!(
                    "`{raw}` is not below {count} (the shard count of --shard k8s/{count}; it counts from 0)"
                )));
            }
            zero_based + 1
        } else {
            let index: u32 = i
                .trim()
                .parse()
                .map_err(|_| usage(format!("`{text}`: I must be a whole number (or k8s)")))?;
            if index == 0 || index > count {
                return Err(usage(format!(
                    "`{text}`: the shard index counts from 1 to {count}"
                )));
            }
            index
        };
        Ok(Shard { index, count })
    }

    /// This shard's part of `total` whole things: `total / N`, plus one on the first
    /// `total % N` shards. The parts of all N shards add up to `total`.
    pub fn share(&self, total: u64) -> u64 {
        let n = u64::from(self.count);
        let extra = u64::from(self.index - 1) < total % n;
        total / n + u64::from(extra)
    }
}

/// Why a `--shard` value cannot be used: the flag's text, or the Kubernetes variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShardError {
    Flag(String),
    Variable(String),
}

/// The plan one shard runs.
#[derive(Clone, Debug)]
pub struct ShardPlan {
    pub plan: Plan,
    /// Scenarios whose share is zero on this shard (they are not in `plan`).
    pub idle: Vec<String>,
}

/// This shard's part of every scenario of `plan`.
pub fn split_plan(plan: &Plan, shard: Shard) -> ShardPlan {
    let mut out = plan.clone();
    let mut idle = Vec::new();
    out.scenarios = plan
        .scenarios
        .iter()
        .filter_map(|s| match split_scenario(s, shard) {
            Some(part) => Some(part),
            None => {
                idle.push(s.name.clone());
                None
            }
        })
        .collect();
    ShardPlan { plan: out, idle }
}

/// One scenario's share, or None when this shard sends nothing for it.
fn split_scenario(s: &ScenarioPlan, shard: Shard) -> Option<ScenarioPlan> {
    let mut part = s.clone();
    let n = shard.count;
    part.load.model = match s.load.model {
        LoadModel::Closed { users } => {
            let mine = shard.share(u64::from(users)) as u32;
            if mine == 0 {
                return None;
            }
            LoadModel::Closed { users: mine }
        }
        LoadModel::Open {
            rate,
            max_in_flight,
        } => LoadModel::Open {
            rate: rate / f64::from(n),
            max_in_flight: max_in_flight.div_ceil(n).max(1),
        },
    };
    if let Some(total) = s.load.max_requests {
        let mine = shard.share(total);
        if mine == 0 {
            return None;
        }
        part.load.max_requests = Some(mine);
    }
    partition_feeders(&mut part, shard);
    Some(part)
}

/// A feeder (`data:` file) is partitioned: this shard hands out its own contiguous slice of the
/// rows (`Feeder::partition`), so a `unique` feeder stays unique across shards and the shards
/// together read each row once. The cells stay shared; only the slice bounds are new.
fn partition_feeders(s: &mut ScenarioPlan, shard: Shard) {
    let Some(flow) = &s.flow else { return };
    let Some(feeder) = &flow.feeder else { return };
    let part = feeder.partition(shard.index as usize - 1, shard.count as usize);
    let mut flow = (**flow).clone();
    flow.feeder = Some(std::sync::Arc::new(part));
    s.flow = Some(std::sync::Arc::new(flow));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn parses_i_of_n_and_refuses_what_is_not() {
        assert_eq!(
            Shard::parse("2/4", &no_env),
            Ok(Shard { index: 2, count: 4 })
        );
        assert_eq!(
            Shard::parse("1/1", &no_env),
            Ok(Shard { index: 1, count: 1 })
        );
        for bad in ["0/4", "5/4", "x", "1/0", "a/4", "2/b", "", "-1/4"] {
            assert!(
                matches!(Shard::parse(bad, &no_env), Err(ShardError::Flag(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn k8s_reads_the_zero_based_completion_index() {
        let env =
            |v: &'static str| move |name: &str| (name == K8S_INDEX_VAR).then(|| v.to_string());
        assert_eq!(
            Shard::parse("k8s/4", &env("0")),
            Ok(Shard { index: 1, count: 4 })
        );
        assert_eq!(
            Shard::parse("k8s/4", &env("3")),
            Ok(Shard { index: 4, count: 4 })
        );
        for bad in ["4", "x", "-1", ""] {
            assert!(
                matches!(
                    Shard::parse("k8s/4", &env(bad)),
                    Err(ShardError::Variable(_))
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            Shard::parse("k8s/4", &no_env),
            Err(ShardError::Variable(_))
        ));
    }

    #[test]
    fn shares_spread_the_remainder_over_the_first_shards_and_add_up() {
        let shares = |total: u64, n: u32| -> Vec<u64> {
            (1..=n)
                .map(|index| Shard { index, count: n }.share(total))
                .collect()
        };
        assert_eq!(shares(10, 4), [3, 3, 2, 2]);
        assert_eq!(shares(1, 4), [1, 0, 0, 0]);
        assert_eq!(shares(8, 4), [2, 2, 2, 2]);
        for total in 0..40 {
            for n in 1..9 {
                assert_eq!(shares(total, n).iter().sum::<u64>(), total, "{total}/{n}");
            }
        }
    }

    fn plan() -> Plan {
        let sources = vec![
            crate::config::Source {
                path: "s/closed.yml".into(),
                text: "name: closed\nrequest: { url: /a }\nload: { users: 10, duration: 1s, requests: 7 }\n".into(),
            },
            crate::config::Source {
                path: "s/open.yml".into(),
                text: "name: open\nrequest: { url: /b }\nload: { rate: 100, duration: 1s }\n".into(),
            },
            crate::config::Source {
                path: "s/one.yml".into(),
                text: "name: one\nrequest: { url: /c }\nload: { users: 1, duration: 1s }\n".into(),
            },
            crate::config::Source {
                path: "s/ramp.yml".into(),
                text: "name: ramp\nrequest: { url: /d }\nload: { users: [2, 6], duration: 1s }\n".into(),
            },
        ];
        let overrides = crate::config::Overrides {
            target: Some("http://127.0.0.1:9".into()),
            ..Default::default()
        };
        crate::config::build_plan("s", None, &sources, &overrides, &|_| None).unwrap()
    }

    #[test]
    fn every_scenario_is_split_and_the_shards_add_up_to_the_plan() {
        let plan = plan();
        let n = 4;
        let parts: Vec<ShardPlan> = (1..=n)
            .map(|index| split_plan(&plan, Shard { index, count: n }))
            .collect();
        for s in &plan.scenarios {
            let mine: Vec<&ScenarioPlan> = parts
                .iter()
                .filter_map(|p| p.plan.scenarios.iter().find(|x| x.name == s.name))
                .collect();
            // Hashes stay those of the whole definition.
            assert!(mine.iter().all(|x| x.hash == s.hash), "{}", s.name);
            match s.load.model {
                LoadModel::Closed { users } => {
                    let sum: u32 = mine
                        .iter()
                        .map(|x| match x.load.model {
                            LoadModel::Closed { users } => users,
                            LoadModel::Open { .. } => panic!("model changed"),
                        })
                        .sum();
                    assert_eq!(sum, users, "{}", s.name);
                }
                LoadModel::Open { rate, .. } => {
                    assert_eq!(mine.len(), n as usize);
                    let sum: f64 = mine
                        .iter()
                        .map(|x| match x.load.model {
                            LoadModel::Open {
                                rate,
                                max_in_flight,
                            } => {
                                assert!(max_in_flight >= 1);
                                rate
                            }
                            LoadModel::Closed { .. } => panic!("model changed"),
                        })
                        .sum();
                    assert!((sum - rate).abs() < 1e-9);
                }
            }
            if let Some(total) = s.load.max_requests {
                let sum: u64 = mine.iter().map(|x| x.load.max_requests.unwrap()).sum();
                assert_eq!(sum, total);
            }
        }
        // 10 users over 4: 3,3,2,2; but `requests: 7` → 2,2,2,1.
        let closed = |p: &ShardPlan| {
            let s = p
                .plan
                .scenarios
                .iter()
                .find(|s| s.name == "closed")
                .unwrap();
            (s.load.model, s.load.max_requests)
        };
        assert_eq!(closed(&parts[0]), (LoadModel::Closed { users: 3 }, Some(2)));
        assert_eq!(closed(&parts[3]), (LoadModel::Closed { users: 2 }, Some(1)));
        // One user: only the first shard sends it; the others say so.
        assert!(parts[0].idle.is_empty());
        for p in &parts[1..] {
            assert!(p.idle.contains(&"one".to_string()), "{:?}", p.idle);
        }
        // Ramp steps are split step by step: 2 users → 1,1,0,0.
        let ramp2 = plan
            .scenarios
            .iter()
            .find(|s| s.ramp.as_ref().is_some_and(|r| r.users == 2))
            .unwrap();
        assert!(parts[2].idle.contains(&ramp2.name));
        assert!(!parts[1].idle.contains(&ramp2.name));
    }

    #[test]
    fn one_shard_is_the_whole_plan() {
        let plan = plan();
        let one = split_plan(&plan, Shard { index: 1, count: 1 });
        assert!(one.idle.is_empty());
        assert_eq!(one.plan.scenarios.len(), plan.scenarios.len());
        for (a, b) in one.plan.scenarios.iter().zip(&plan.scenarios) {
            assert_eq!(a.load, b.load);
        }
    }

    #[test]
    fn a_feeder_is_partitioned_so_unique_rows_stay_unique_across_shards() {
        let dir = tempfile::tempdir().unwrap();
        let ids: String = (1..=10).map(|i| format!("{i}\n")).collect();
        std::fs::write(dir.path().join("ids.csv"), format!("id\n{ids}")).unwrap();
        let file = dir.path().join("fed.yml");
        let sources = vec![crate::config::Source {
            path: file,
            text: "name: fed\nrequest: { url: \"/a/{{ data.id }}\" }\ndata: { file: ids.csv, order: unique, on_exhausted: stop }\nload: { users: 3, duration: 1s }\n".into(),
        }];
        let overrides = crate::config::Overrides {
            target: Some("http://127.0.0.1:9".into()),
            ..Default::default()
        };
        let plan = crate::config::build_plan("s", None, &sources, &overrides, &|_| None).unwrap();
        let mut seen = Vec::new();
        for index in 1..=3 {
            let part = split_plan(&plan, Shard { index, count: 3 });
            let feeder = part.plan.scenarios[0]
                .flow
                .as_ref()
                .and_then(|f| f.feeder.clone())
                .expect("the shard keeps its feeder");
            let mut rng = <rand::rngs::SmallRng as rand::SeedableRng>::seed_from_u64(7);
            while let Some(row) = feeder.next(&mut rng) {
                seen.push(feeder.row(row)[0].to_string());
            }
        }
        seen.sort_by_key(|v| v.parse::<u32>().unwrap());
        let all: Vec<String> = (1..=10).map(|i| i.to_string()).collect();
        assert_eq!(seen, all, "every row once, across the three shards");
    }
}
