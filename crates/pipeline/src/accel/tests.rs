//! Selection and property mapping against an injected registry: every combination of elements
//! picks the expected chain.

use gst::prelude::*;

use super::*;

const NV_DEC: &str = "nvh264dec";
const NV_ENC: &str = "nvh264enc";
const NV_CUDA_ENC: &str = "nvcudah264enc";

fn nv_full() -> FakeRegistry {
    FakeRegistry::software()
        .with(&[NV_DEC, NV_ENC, NV_CUDA_ENC])
        .with(&CUDA_FILTERS)
}

/// GPU decode and scale, no NVENC: H100 / H200.
fn nv_no_nvenc() -> FakeRegistry {
    FakeRegistry::software().with(&[NV_DEC]).with(&CUDA_FILTERS)
}

fn pick(reg: &FakeRegistry, policy: AcceleratorPolicy) -> Selection {
    select(&probe(reg, 0), policy)
}

/// (decoder, scale backend, encoder factory, unmet count)
type Chain<'a> = (&'a str, Backend, &'a str, usize);

fn chain(s: &Selection) -> Chain<'_> {
    (
        s.decoder.factory.as_str(),
        s.scale,
        s.encoder.factory.as_str(),
        s.unmet.len(),
    )
}

#[test]
fn every_combination_picks_the_expected_chain() {
    use AcceleratorPolicy::*;
    use Backend::Nvidia as Gpu;
    use Backend::Software as Cpu;
    let va = FakeRegistry::software().with(&["vah264enc"]);
    let vaapi = FakeRegistry::software().with(&["vaapih264enc"]);
    let cases: Vec<(&str, FakeRegistry, AcceleratorPolicy, Chain<'_>)> = vec![
        (
            "software only, auto",
            FakeRegistry::software(),
            Auto,
            ("avdec_h264", Cpu, "x264enc", 0),
        ),
        (
            "software only, nvidia",
            FakeRegistry::software(),
            Nvidia,
            ("avdec_h264", Cpu, "x264enc", 3),
        ),
        (
            "full NVIDIA, auto",
            nv_full(),
            Auto,
            (NV_DEC, Gpu, NV_ENC, 0),
        ),
        (
            "full NVIDIA, nvidia",
            nv_full(),
            Nvidia,
            (NV_DEC, Gpu, NV_ENC, 0),
        ),
        (
            "full NVIDIA, software",
            nv_full(),
            Software,
            ("avdec_h264", Cpu, "x264enc", 0),
        ),
        (
            "H200 hybrid, auto",
            nv_no_nvenc(),
            Auto,
            (NV_DEC, Gpu, "x264enc", 0),
        ),
        (
            "H200 hybrid, nvidia",
            nv_no_nvenc(),
            Nvidia,
            (NV_DEC, Gpu, "x264enc", 0),
        ),
        (
            "only the CUDA-mode encoder",
            FakeRegistry::software()
                .with(&[NV_DEC, NV_CUDA_ENC])
                .with(&CUDA_FILTERS),
            Auto,
            (NV_DEC, Gpu, NV_CUDA_ENC, 0),
        ),
        (
            "NVENC registered but cannot open (sessions exhausted, no video capability)",
            FakeRegistry::software()
                .with(&[NV_DEC])
                .with(&CUDA_FILTERS)
                .with_broken(&[NV_ENC]),
            Nvidia,
            (NV_DEC, Gpu, "x264enc", 1),
        ),
        (
            "NVENC broken, auto falls back without complaint",
            FakeRegistry::software()
                .with(&[NV_DEC])
                .with(&CUDA_FILTERS)
                .with_broken(&[NV_ENC]),
            Auto,
            (NV_DEC, Gpu, "x264enc", 0),
        ),
        (
            "decoder broken, scale and encode fine",
            FakeRegistry::software()
                .with(&[NV_ENC])
                .with(&CUDA_FILTERS)
                .with_broken(&[NV_DEC]),
            Auto,
            ("avdec_h264", Gpu, NV_ENC, 0),
        ),
        (
            "one CUDA filter missing: scale in software",
            FakeRegistry::software().with(&[
                NV_DEC,
                NV_ENC,
                "cudascale",
                "cudaconvert",
                "cudaupload",
            ]),
            Auto,
            (NV_DEC, Cpu, NV_ENC, 0),
        ),
        (
            "one CUDA filter missing under nvidia: unmet scale",
            FakeRegistry::software().with(&[
                NV_DEC,
                NV_ENC,
                "cudascale",
                "cudaconvert",
                "cudaupload",
            ]),
            Nvidia,
            (NV_DEC, Cpu, NV_ENC, 1),
        ),
        (
            "VA only, auto",
            va.clone(),
            Auto,
            ("avdec_h264", Cpu, "vah264enc", 0),
        ),
        (
            "VA only, nvidia: VA is not NVIDIA",
            va,
            Nvidia,
            ("avdec_h264", Cpu, "x264enc", 3),
        ),
        (
            "gstreamer-vaapi only, auto",
            vaapi,
            Auto,
            ("avdec_h264", Cpu, "vaapih264enc", 0),
        ),
        (
            "NVIDIA beats VA",
            nv_full().with(&["vah264enc", "vaapih264enc"]),
            Auto,
            (NV_DEC, Gpu, NV_ENC, 0),
        ),
        (
            "broken VA falls through to vaapi",
            FakeRegistry::software()
                .with_broken(&["vah264enc"])
                .with(&["vaapih264enc"]),
            Auto,
            ("avdec_h264", Cpu, "vaapih264enc", 0),
        ),
    ];
    for (name, reg, policy, want) in cases {
        let s = pick(&reg, policy);
        assert_eq!(
            chain(&s),
            want,
            "{name}: {}; unmet {:?}",
            s.describe(),
            s.unmet
        );
    }
}

#[test]
fn fallbacks_and_unmet_say_why() {
    let s = pick(&FakeRegistry::software(), AcceleratorPolicy::Nvidia);
    assert!(
        s.unmet[0].contains("nvh264dec is not registered"),
        "{:?}",
        s.unmet
    );
    assert_eq!(s.fallbacks.len(), 3);
    let s = pick(&nv_no_nvenc(), AcceleratorPolicy::Nvidia);
    assert!(s.unmet.is_empty());
    let (stage, why) = &s.fallbacks[0];
    assert_eq!(*stage, Stage::Encode);
    assert!(why.contains("no NVENC"), "{why}");
    let s = pick(
        &FakeRegistry::software()
            .with(&[NV_DEC])
            .with(&CUDA_FILTERS)
            .with_broken(&[NV_ENC]),
        AcceleratorPolicy::Nvidia,
    );
    assert!(
        s.unmet[0].contains("registered but could not open"),
        "{:?}",
        s.unmet
    );
    // Software asks nothing of the machine and promises nothing.
    let s = pick(&FakeRegistry::empty(), AcceleratorPolicy::Software);
    assert!(s.fallbacks.is_empty() && s.unmet.is_empty() && !s.uses_hardware());
}

#[test]
fn devices_use_the_per_device_factory_names() {
    let reg = FakeRegistry::software()
        .with(&["nvh264device1dec", "nvh264device1enc"])
        .with(&CUDA_FILTERS);
    let s = select(&probe(&reg, 1), AcceleratorPolicy::Nvidia);
    assert_eq!(
        chain(&s),
        ("nvh264device1dec", Backend::Nvidia, "nvh264device1enc", 0)
    );
    assert_eq!(s.device, 1);
    // Device 0's elements do not serve device 1.
    let s = select(&probe(&nv_full(), 1), AcceleratorPolicy::Auto);
    assert_eq!(s.decoder.factory, "avdec_h264");
    assert_eq!(
        NvidiaFactories::for_device(2).cuda_encoder,
        "nvcudah264device2enc"
    );
}

#[test]
fn capabilities_report_per_stage_and_kind() {
    let caps = probe(&nv_no_nvenc().with(&["vah264enc"]), 0);
    assert!(caps.available(Stage::Decode, Backend::Nvidia));
    assert!(caps.available(Stage::Scale, Backend::Nvidia));
    assert!(!caps.available(Stage::Encode, Backend::Nvidia));
    assert!(caps.available(Stage::Encode, Backend::Vaapi));
    assert!(caps.available(Stage::Encode, Backend::Software));
    let summary = caps.summary();
    assert!(summary.contains("nvh264enc=missing"), "{summary}");
    assert!(summary.contains("nvh264dec=usable"), "{summary}");
    let broken = probe(&FakeRegistry::software().with_broken(&[NV_ENC]), 0);
    assert!(broken
        .summary()
        .contains("nvh264enc=registered-but-unusable"));
    assert!(!broken.available(Stage::Encode, Backend::Nvidia));
}

#[test]
fn session_budget_admits_per_rung_and_releases_on_drop() {
    let b = SessionBudget::new(Some(2));
    let a = b.try_acquire().unwrap();
    let c = b.try_acquire().unwrap();
    assert!(b.try_acquire().is_none());
    assert_eq!(b.in_use(), 2);
    drop(a);
    assert!(b.try_acquire().is_some());
    drop(c);
    assert_eq!(b.in_use(), 0);
    let unlimited = SessionBudget::new(None);
    let leases: Vec<_> = (0..100).map(|_| unlimited.try_acquire().unwrap()).collect();
    assert_eq!(unlimited.in_use(), leases.len());
}

fn settings(preset: &str) -> EncoderSettings {
    EncoderSettings {
        kbps: 2800,
        key_int_max: 600,
        preset: preset.into(),
        low_latency: true,
    }
}

fn props(kind: EncoderKind, s: &EncoderSettings) -> Vec<(String, String)> {
    encoder_properties(kind, s)
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}

fn p(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn property_mapping_per_encoder() {
    let s = settings("veryfast");
    assert_eq!(
        props(EncoderKind::X264, &s),
        p(&[
            ("bitrate", "2800"),
            ("pass", "cbr"),
            ("vbv-buf-capacity", "1000"),
            ("key-int-max", "600"),
            ("speed-preset", "veryfast"),
            ("tune", "zerolatency"),
            ("bframes", "0"),
            ("option-string", "scenecut=0"),
        ])
    );
    assert_eq!(
        props(EncoderKind::NvEnc, &s),
        p(&[
            ("bitrate", "2800"),
            ("rc-mode", "cbr"),
            ("vbv-buffer-size", "2800"),
            ("gop-size", "600"),
            ("preset", "low-latency-hp"),
            ("zerolatency", "true"),
            ("bframes", "0"),
            ("rc-lookahead", "0"),
        ])
    );
    assert_eq!(
        props(EncoderKind::NvCudaEnc, &s),
        p(&[
            ("bitrate", "2800"),
            ("rc-mode", "cbr"),
            ("vbv-buffer-size", "2800"),
            ("gop-size", "600"),
            ("preset", "low-latency-hp"),
            ("zero-reorder-delay", "true"),
            ("b-frames", "0"),
            ("rc-lookahead", "0"),
        ])
    );
    let long_gop = EncoderSettings {
        key_int_max: 3000,
        ..s.clone()
    };
    assert_eq!(
        props(EncoderKind::Va, &long_gop),
        p(&[
            ("bitrate", "2800"),
            ("rate-control", "cbr"),
            ("cpb-size", "2800"),
            ("key-int-max", "1024"),
            ("target-usage", "6"),
            ("b-frames", "0"),
        ])
    );
    assert_eq!(
        props(EncoderKind::Vaapi, &s),
        p(&[
            ("bitrate", "2800"),
            ("rate-control", "cbr"),
            ("cpb-length", "1000"),
            ("keyframe-period", "600"),
            ("quality-level", "6"),
            ("max-bframes", "0"),
        ])
    );
    // The fault encoder is x264 inside.
    assert_eq!(
        props(EncoderKind::Fault { error_after: 1 }, &s),
        props(EncoderKind::X264, &s)
    );
}

#[test]
fn presets_map_to_the_nearest_equivalent() {
    let nv = |preset: &str, low_latency| {
        let s = EncoderSettings {
            low_latency,
            ..settings(preset)
        };
        encoder_properties(EncoderKind::NvEnc, &s)
            .into_iter()
            .find(|(k, _)| *k == "preset")
            .unwrap()
            .1
    };
    assert_eq!(nv("ultrafast", true), "low-latency-hp");
    assert_eq!(nv("medium", true), "low-latency");
    assert_eq!(nv("veryslow", true), "low-latency-hq");
    assert_eq!(nv("ultrafast", false), "hp");
    assert_eq!(nv("slow", false), "hq");
    let va = |preset: &str| {
        encoder_properties(EncoderKind::Va, &settings(preset))
            .into_iter()
            .find(|(k, _)| *k == "target-usage")
            .unwrap()
            .1
    };
    assert_eq!(va("ultrafast"), "7");
    assert_eq!(va("medium"), "4");
    assert_eq!(va("placebo"), "1");
    // Without low latency, no reordering knobs are forced.
    let relaxed = EncoderSettings {
        low_latency: false,
        ..settings("fast")
    };
    for kind in [
        EncoderKind::X264,
        EncoderKind::NvEnc,
        EncoderKind::NvCudaEnc,
        EncoderKind::Va,
        EncoderKind::Vaapi,
    ] {
        let names: Vec<_> = encoder_properties(kind, &relaxed)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        for forbidden in [
            "bframes",
            "b-frames",
            "max-bframes",
            "zerolatency",
            "zero-reorder-delay",
            "tune",
        ] {
            assert!(!names.contains(&forbidden), "{kind:?} sets {forbidden}");
        }
    }
}

#[test]
fn mapping_applies_to_real_elements_where_installed() {
    crate::init::init().unwrap();
    let s = settings("ultrafast");
    let mut tried = 0;
    for (factory, kind) in [
        ("x264enc", EncoderKind::X264),
        ("nvh264enc", EncoderKind::NvEnc),
        ("nvcudah264enc", EncoderKind::NvCudaEnc),
        ("vah264enc", EncoderKind::Va),
        ("vaapih264enc", EncoderKind::Vaapi),
    ] {
        let Ok(el) = gst::ElementFactory::make(factory).build() else {
            eprintln!("SKIP {factory}: not installed on this machine");
            continue;
        };
        tried += 1;
        let skipped = apply_properties(&el, &encoder_properties(kind, &s)).unwrap();
        assert!(skipped.is_empty(), "{factory} lacks {skipped:?}");
        assert_eq!(el.property::<u32>("bitrate"), 2800, "{factory}");
    }
    assert!(tried >= 1, "x264enc must be installed");
    let x = gst::ElementFactory::make("x264enc").build().unwrap();
    apply_properties(&x, &encoder_properties(EncoderKind::X264, &s)).unwrap();
    assert_eq!(x.property::<u32>("key-int-max"), 600);
    assert_eq!(x.property::<u32>("bframes"), 0);
    // A value the property's type refuses is an error, not a panic.
    assert!(apply_properties(&x, &[("speed-preset", "warp".into())]).is_err());
    // A property the element lacks is skipped and reported.
    assert_eq!(
        apply_properties(&x, &[("no-such-property", "1".into())]).unwrap(),
        ["no-such-property"]
    );
}

#[test]
fn real_registry_reports_this_machine() {
    let reg = GstRegistry::new();
    assert!(reg.has("x264enc") && reg.has("avdec_h264"));
    let caps = probe(&reg, 0);
    eprintln!("{}", caps.summary());
    assert!(caps.available(Stage::Encode, Backend::Software));
    // Whatever this machine has, selection never leaves a stage without an element.
    let s = select(&caps, AcceleratorPolicy::Auto);
    assert!(
        reg.has(&s.decoder.factory) && reg.has(&s.encoder.factory),
        "{}",
        s.describe()
    );
    // The probe pipelines themselves are sound: x264 opens through the encoder probe.
    assert!(reg.can_open("x264enc"));
    assert!(!reg.can_open("no-such-element"));
}
