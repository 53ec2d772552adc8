//! Prints what the accelerator probe finds on this machine and, with `--ladder`, runs a short
//! test-pattern ladder through every chain the machine can build (software, hybrid GPU decode +
//! scale with x264, full NVIDIA, VA-API). Used by `scripts/gpu-smoke.sh`.
//!
//! ```text
//! cargo run --release -p pipeline --example probe -- [--device N] [--ladder]
//! ```

use std::sync::{Arc, Mutex};
use std::time::Duration;

use media::cmaf::{ChunkKind, CmafChunk};
use pipeline::accel::{
    self, AcceleratorPolicy, Backend, DecoderChoice, EncoderChoice, EncoderKind, Selection, Stage,
};
use pipeline::{ChunkSink, LadderConfig, Rendition, RungInfo, StartOptions, StreamPipeline};

#[derive(Default)]
struct Count {
    segments: Mutex<Vec<usize>>,
    errors: Mutex<Vec<String>>,
}

impl ChunkSink for Count {
    fn on_rung_ready(&self, _info: RungInfo) {}
    fn on_chunk(&self, rung: usize, chunk: CmafChunk, _arrivals: &[std::time::Instant]) {
        if chunk.kind == ChunkKind::SegmentStart {
            let mut s = self.segments.lock().unwrap();
            if s.len() <= rung {
                s.resize(rung + 1, 0);
            }
            s[rung] += 1;
        }
    }
    fn on_failure(&self, failure: pipeline::Failure) {
        self.errors.lock().unwrap().push(failure.message);
    }
}

fn run_ladder(name: &str, selection: Selection, input: &pipeline::testing::Generated) -> bool {
    let ladder = LadderConfig {
        renditions: vec![
            Rendition::passthrough("source"),
            Rendition::transcode("360p", 360, 800, Some(30)),
            Rendition::transcode("240p", 240, 400, Some(30)),
        ],
        preset: "veryfast".into(),
        segment_duration: Duration::from_secs(1),
        part_duration: Some(Duration::from_millis(250)),
        max_queued_frames: 10_000,
    };
    let sink = Arc::new(Count::default());
    let described = selection.describe();
    let started = std::time::Instant::now();
    let p = match StreamPipeline::start_with(
        name,
        &input.video,
        input.audio.as_ref(),
        &ladder,
        sink.clone(),
        &StartOptions {
            selection: Some(selection),
            ..StartOptions::default()
        },
    ) {
        Ok(p) => p,
        Err(e) => {
            println!("ladder {name}: FAIL to start ({described}): {e}");
            return false;
        }
    };
    for f in &input.frames {
        p.push(f);
    }
    p.finish();
    let segments = sink.segments.lock().unwrap().clone();
    let errors = sink.errors.lock().unwrap().clone();
    let ok = errors.is_empty() && segments.len() == 3 && segments.iter().all(|&n| n >= 2);
    println!(
        "ladder {name}: {} in {:?} ({described}); segments per rung {segments:?}{}",
        if ok { "OK" } else { "FAIL" },
        started.elapsed(),
        if errors.is_empty() {
            String::new()
        } else {
            format!("; errors: {errors:?}")
        }
    );
    ok
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let device = args
        .iter()
        .position(|a| a == "--device")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0u32);
    let ladder = args.iter().any(|a| a == "--ladder");
    pipeline::init().expect("GStreamer");

    let registry = accel::GstRegistry::new();
    let caps = accel::probe(&registry, device);
    println!("probe (cuda device {device}): {}", caps.summary());
    for stage in Stage::ALL {
        for backend in Backend::ALL {
            println!(
                "ferrocast_accelerator_available{{stage=\"{}\",kind=\"{}\"}} {}",
                stage.as_str(),
                backend.as_str(),
                u8::from(caps.available(stage, backend))
            );
        }
    }
    for policy in [AcceleratorPolicy::Auto, AcceleratorPolicy::Nvidia] {
        let s = accel::select(&caps, policy);
        println!("select {}: {}", policy.as_str(), s.describe());
        for (stage, why) in &s.fallbacks {
            println!("  fallback {}: {why}", stage.as_str());
        }
        for why in &s.unmet {
            println!("  UNMET: {why}");
        }
    }
    if !ladder {
        return;
    }

    let input = pipeline::testing::generate(&pipeline::testing::Source {
        width: 640,
        height: 360,
        seconds: 3,
        ..Default::default()
    })
    .expect("test input");
    let nv = accel::NvidiaFactories::for_device(device);
    let mut chains = vec![("software", Selection::software())];
    let gpu_decode = caps.usable(&nv.decoder);
    let gpu_scale = caps.available(Stage::Scale, Backend::Nvidia);
    let mut base = Selection::software();
    base.device = device;
    if gpu_decode {
        let mut s = base.clone();
        s.decoder = DecoderChoice {
            factory: nv.decoder.clone(),
            backend: Backend::Nvidia,
        };
        chains.push(("nvdec+cpu-scale+x264", s));
    }
    if gpu_scale {
        let mut s = base.clone();
        s.scale = Backend::Nvidia;
        chains.push(("cpu-decode+cuda-scale+x264", s));
    }
    if gpu_decode && gpu_scale {
        let mut s = base.clone();
        s.decoder = DecoderChoice {
            factory: nv.decoder.clone(),
            backend: Backend::Nvidia,
        };
        s.scale = Backend::Nvidia;
        chains.push(("hybrid nvdec+cuda-scale+x264", s.clone()));
        for (factory, kind) in [
            (&nv.encoder, EncoderKind::NvEnc),
            (&nv.cuda_encoder, EncoderKind::NvCudaEnc),
        ] {
            if caps.usable(factory) {
                let mut full = s.clone();
                full.encoder = EncoderChoice {
                    factory: factory.clone(),
                    kind,
                };
                chains.push(("full nvidia", full));
            }
        }
    }
    for (factory, kind) in [
        ("vah264enc", EncoderKind::Va),
        ("vaapih264enc", EncoderKind::Vaapi),
    ] {
        if caps.usable(factory) {
            let mut s = base.clone();
            s.encoder = EncoderChoice {
                factory: factory.into(),
                kind,
            };
            chains.push(("va-api encode", s));
        }
    }
    let mut failed = 0;
    for (name, selection) in chains {
        if !run_ladder(name, selection, &input) {
            failed += 1;
        }
    }
    if failed > 0 {
        println!("{failed} chain(s) failed");
        std::process::exit(1);
    }
}
