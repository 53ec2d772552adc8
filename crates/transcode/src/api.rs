//! The accelerator's state as `/api/v1/capabilities` shows it.

use pipeline::accel;

use crate::hardware::Hardware;
use crate::output::StreamOutput;
use crate::outputs::Outputs;

/// A stream's rungs as `/api/v1/streams` shows them: name, whether shed under overload (since
/// when, why), and the realtime factor of each rung that is not.
pub fn rungs_json(output: &StreamOutput) -> serde_json::Value {
    use serde_json::json;
    let rungs: Vec<_> = output
        .status()
        .rungs
        .into_iter()
        .map(|r| {
            json!({
                "name": r.name,
                "shed": r.shed.is_some(),
                "shed_reason": r.shed.map(|s| s.reason.label()),
                "shed_since": r.shed.map(|s| ingest::rfc3339(s.since)),
                "realtime_factor": r.realtime_factor,
            })
        })
        .collect();
    json!(rungs)
}

/// The body of `/api/v1/capabilities`.
pub fn capabilities_json(acc: &Hardware, outputs: &Outputs) -> serde_json::Value {
    use serde_json::json;
    let elements: Vec<_> = acc
        .capabilities
        .elements
        .iter()
        .map(|e| {
            json!({
                "stage": e.stage.as_str(),
                "kind": e.backend.as_str(),
                "factory": e.factory,
                "registered": e.registered,
                "usable": e.usable,
            })
        })
        .collect();
    let mut available = serde_json::Map::new();
    for stage in accel::Stage::ALL {
        let kinds: Vec<&str> = accel::Backend::ALL
            .iter()
            .filter(|b| acc.capabilities.available(stage, **b))
            .map(|b| b.as_str())
            .collect();
        available.insert(stage.as_str().into(), json!(kinds));
    }
    let s = &acc.selection;
    let mut streams: Vec<_> = outputs
        .all()
        .into_iter()
        .filter_map(|o| {
            let status = o.status();
            let backends = status.backends.filter(|_| !status.over)?;
            Some((o.name().to_string(), backends))
        })
        .collect();
    streams.sort_by(|a, b| a.0.cmp(&b.0));
    let streams: Vec<_> = streams
        .into_iter()
        .map(|(name, b)| {
            json!({
                "name": name,
                "decode": { "factory": b.decoder.factory, "backend": b.decoder.backend.as_str() },
                "scale": b.scale.as_str(),
                "rungs": b.rungs.iter().map(|r| json!({
                    "name": r.name,
                    "encoder": r.encoder,
                    "backend": r.backend.as_str(),
                    "fallback": r.fallback,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "policy": acc.policy.as_str(),
        "on_failure": acc.on_failure.as_str(),
        "device": acc.capabilities.device,
        "available": available,
        "elements": elements,
        "selection": {
            "decode": { "factory": s.decoder.factory, "backend": s.decoder.backend.as_str() },
            "scale": s.scale.as_str(),
            "encode": { "factory": s.encoder.factory, "backend": s.encoder.kind.backend().as_str() },
            "fallbacks": s.fallbacks.iter().map(|(stage, why)| json!({ "stage": stage.as_str(), "reason": why })).collect::<Vec<_>>(),
            "unmet": s.unmet,
        },
        "refusal": acc.refusal,
        "encoder_sessions": { "in_use": acc.sessions.in_use(), "limit": acc.sessions.limit() },
        "fallbacks": acc.fallbacks.by_label(),
        "refusals": acc.refusals.by_label(),
        "streams": streams,
    })
}
