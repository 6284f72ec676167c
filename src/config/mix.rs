//! Traffic mixes: open-model scenarios with the same `group:` share one arrival rate, split by
//! their `weight:` (70/20/10 of 100/s is 70/s, 20/s and 10/s), and run at the same time, so the
//! service sees the mix production sends. The group's rate is the `load.rate` its members have
//! (the suite default, usually): they must agree.

use std::path::Path;

use serde_saphyr::Spanned;

use super::error::ConfigError;
use super::plan::{LoadModel, MixMember, ScenarioPlan};

/// Mark a scenario's plans as members of their group (weight 1 unless given).
pub(super) fn tag(
    file: &Path,
    plans: &mut [ScenarioPlan],
    (group, weight): (Option<Spanned<String>>, Option<Spanned<f64>>),
) -> Result<(), ConfigError> {
    let group = match (group, &weight) {
        (None, None) => return Ok(()),
        (None, Some(w)) => {
            return Err(ConfigError::at(
                file,
                Some(w.referenced),
                "weight",
                "a weight is a share of a group's rate: add `group: NAME` (the scenarios that share the rate)",
            ));
        }
        (Some(g), _) => g,
    };
    let name = group.value.trim().to_string();
    if name.is_empty() {
        return Err(ConfigError::at(
            file,
            Some(group.referenced),
            "group",
            "must not be empty",
        ));
    }
    let w = match &weight {
        Some(w) if !(w.value.is_finite() && w.value > 0.0) => {
            return Err(ConfigError::at(
                file,
                Some(w.referenced),
                "weight",
                "must be a number above zero (e.g. 70 for 70%)",
            ));
        }
        Some(w) => w.value,
        None => 1.0,
    };
    for p in plans.iter_mut() {
        let LoadModel::Open { rate, .. } = p.load.model else {
            return Err(ConfigError::at(
                file,
                Some(group.referenced),
                "group",
                "a traffic mix splits one arrival rate: its scenarios need the open model (`load.rate`)",
            ));
        };
        if p.llm.is_some() || p.ramp.is_some() {
            return Err(ConfigError::at(
                file,
                Some(group.referenced),
                "group",
                "LLM and ramp scenarios cannot be part of a traffic mix",
            ));
        }
        p.group = Some(MixMember {
            group: name.clone(),
            weight: w,
            group_rate: rate,
        });
    }
    Ok(())
}

/// Give each member of each group its share of the group's rate; a group whose members do not
/// agree on the rate is an error.
pub(super) fn split_rates(plans: &mut [ScenarioPlan]) -> Result<(), ConfigError> {
    let mut groups: Vec<String> = plans
        .iter()
        .filter_map(|p| p.group.as_ref().map(|g| g.group.clone()))
        .collect();
    groups.sort();
    groups.dedup();
    for g in groups {
        let members: Vec<usize> = (0..plans.len())
            .filter(|&i| plans[i].group.as_ref().is_some_and(|m| m.group == g))
            .collect();
        let first = &plans[members[0]];
        let rate = first.group.as_ref().expect("member").group_rate;
        if let Some(&other) = members
            .iter()
            .find(|&&i| (plans[i].group.as_ref().expect("member").group_rate - rate).abs() > 1e-9)
        {
            return Err(ConfigError::file(
                &plans[other].file,
                format!(
                    "group `{g}`: its scenarios must share one `load.rate` (the group's rate); {} has {}/s, {} has {}/s",
                    first.file.display(),
                    rate,
                    plans[other].file.display(),
                    plans[other].group.as_ref().expect("member").group_rate
                ),
            ));
        }
        let total: f64 = members
            .iter()
            .map(|&i| plans[i].group.as_ref().expect("member").weight)
            .sum();
        for &i in &members {
            let p = &mut plans[i];
            let w = p.group.as_ref().expect("member").weight;
            if let LoadModel::Open { rate: r, .. } = &mut p.load.model {
                *r = rate * w / total;
            }
            // A new share is a new definition: not compared with runs at another share.
            p.hash = crate::hash::fnv1a_hex(format!("{}|mix {g} {w}/{total}", p.hash).as_bytes());
        }
    }
    Ok(())
}
