//! The planner's arithmetic on tiny synthetic models: KV rows (sliding
//! windows included), f16/f32, parallel sequences, the largest context that
//! fits, refusals, repository listings, and headers read from a prefix.

use std::sync::Arc;

use hearth_gguf::{GgmlType, GgufFile};
use hearth_model::synth::{build, SynthSpec};
use hearth_model::{Arch, KvType, Model, State, UBATCH};
use hearth_ops::ThreadPool;
use hearth_plan::{
    check, plan, plan_repo, Available, Ctx, Estimator, MemorySource, Options, PlanError,
};

fn spec(arch: Arch) -> SynthSpec {
    let mut s = SynthSpec::new(arch);
    s.n_ctx_train = 4096;
    s
}

fn file(s: &SynthSpec) -> GgufFile {
    GgufFile::from_bytes(build(s)).expect("synthetic GGUF parses")
}

fn mem(bytes: u64) -> Available {
    Available {
        bytes,
        source: MemorySource::Limit,
    }
}

fn opts(ctx: Ctx) -> Options {
    Options {
        ctx,
        ..Options::default()
    }
}

const LOTS: u64 = 1 << 40;

#[test]
fn kv_cache_of_full_attention_layers() {
    let s = spec(Arch::Llama);
    let f = file(&s);
    let hd = s.n_embd / s.n_head;
    let kv_dim = (s.n_kv_head * hd) as u64;
    for (kv, elem) in [(KvType::F16, 2u64), (KvType::F32, 4)] {
        for n_ctx in [1usize, 100, 512, 1000, 4096] {
            let p = plan(
                "m",
                &f,
                &Options {
                    kv,
                    ..opts(Ctx::Tokens(n_ctx))
                },
                &mem(LOTS),
            )
            .expect("plan");
            // Keys and values, every layer, every position.
            let want = 2 * s.n_layer as u64 * n_ctx as u64 * kv_dim * elem;
            assert_eq!(p.kv_cache, want, "{kv:?} ctx {n_ctx}");
            assert_eq!(p.kv_type, kv.name());
        }
    }
}

#[test]
fn kv_cache_of_sliding_window_layers_is_a_ring() {
    // Synthetic gemma3: every layer slides over a window of 8.
    let s = spec(Arch::Gemma3);
    let f = file(&s);
    let est = Estimator::new(&f).expect("estimator");
    assert!(est.config.layers.iter().all(|l| l.window == Some(8)));
    let kv_dim = (est.config.n_kv_head * est.config.head_dim) as u64;
    let per_row = 2 * s.n_layer as u64 * kv_dim * 2;
    for (n_ctx, n_ubatch, rows) in [
        (4096, 512, 8 + 512), // a ring of window + micro-batch
        (300, 512, 300),      // the context is smaller than the ring
        (521, 512, 520),
        (520, 512, 520),
        (4096, 16, 24),
    ] {
        let b = est.breakdown(n_ctx, 1, KvType::F16, n_ubatch);
        assert_eq!(b.kv_cache, rows * per_row, "ctx {n_ctx} ubatch {n_ubatch}");
    }
}

/// What the planner counts is what a State allocates.
#[test]
fn kv_cache_matches_the_state() {
    for arch in hearth_model::synth::ARCHS {
        let s = spec(arch);
        let m = Model::from_file(Arc::new(file(&s))).expect("model");
        let est = Estimator::new(m.file()).expect("estimator");
        for kv in [KvType::F16, KvType::F32] {
            for (n_ctx, ub) in [(64, UBATCH), (2048, UBATCH), (2048, 32), (9, 1)] {
                let st = State::try_with_ubatch(&m, n_ctx, kv, Arc::new(ThreadPool::new(1)), ub)
                    .expect("state");
                assert_eq!(
                    est.breakdown(n_ctx, 1, kv, ub).kv_cache,
                    st.kv_bytes() as u64,
                    "{arch:?} {kv:?} ctx {n_ctx} ubatch {ub}"
                );
            }
        }
    }
}

#[test]
fn parallel_sequences_multiply_cache_and_buffers() {
    let f = file(&spec(Arch::Qwen2));
    let one = plan("m", &f, &opts(Ctx::Tokens(1024)), &mem(LOTS)).expect("plan");
    let four = plan(
        "m",
        &f,
        &Options {
            parallel: 4,
            ..opts(Ctx::Tokens(1024))
        },
        &mem(LOTS),
    )
    .expect("plan");
    assert_eq!(four.kv_cache, 4 * one.kv_cache);
    assert_eq!(four.compute, 4 * one.compute);
    assert_eq!(four.weights, one.weights);
    assert_eq!(four.overhead, one.overhead);
    assert_eq!(
        four.total,
        four.weights + four.kv_cache + four.compute + four.overhead
    );
    assert_eq!(four.parallel, 4);
}

#[test]
fn weights_are_the_tensor_data_and_buffers_follow_the_micro_batch() {
    let s = spec(Arch::Llama);
    let f = file(&s);
    let data: u64 = f.tensors().iter().map(|t| t.size).sum();
    let est = Estimator::new(&f).expect("estimator");
    // Tied embedding (no output.weight): every tensor is read.
    assert_eq!(est.weights_read(), data);
    let small = est.breakdown(8, 1, KvType::F16, UBATCH);
    let big = est.breakdown(4096, 1, KvType::F16, UBATCH);
    assert_eq!(small.weights, data);
    // A batch is never longer than the context.
    assert!(small.compute < big.compute);
    assert_eq!(
        big.compute,
        est.breakdown(UBATCH, 1, KvType::F16, UBATCH).compute
    );
    // Activations alone: 512 rows of (3·e + 2·q + 2·kv + 2·ff) f32.
    let hd = s.n_embd / s.n_head;
    let f32s = 512 * (3 * s.n_embd + 2 * s.n_head * hd + 2 * s.n_kv_head * hd + 2 * s.n_ff);
    assert!(big.compute > f32s as u64 * 4);
    assert!(big.overhead > hearth_plan::BASE_OVERHEAD + f.data_offset());
}

#[test]
fn largest_context_that_fits() {
    let f = file(&spec(Arch::Llama));
    let est = Estimator::new(&f).expect("estimator");
    let at = |c| est.breakdown(c, 1, KvType::F16, UBATCH).total();
    // A budget between two contexts' totals: the smaller one is the answer.
    for want in [1usize, 2, 700, 2047, 4095] {
        let budget = at(want + 1) - 1;
        assert!(at(want) <= budget);
        let p = plan("m", &f, &opts(Ctx::Auto), &mem(budget)).expect("plan");
        assert_eq!(p.max_ctx, Some(want));
        assert_eq!(p.n_ctx, want, "auto picks the largest that fits");
        assert!(p.fits);
    }
    // Never past the trained length, however much memory.
    let p = plan("m", &f, &opts(Ctx::Auto), &mem(LOTS)).expect("plan");
    assert_eq!((p.n_ctx, p.max_ctx), (4096, Some(4096)));
    // Nothing fits.
    let p = plan("m", &f, &opts(Ctx::Auto), &mem(at(1) - 1)).expect("plan");
    assert_eq!(p.max_ctx, None);
    assert!(!p.fits);
}

#[test]
fn check_refuses_with_the_numbers_and_the_way_out() {
    let f = file(&spec(Arch::Llama));
    let est = Estimator::new(&f).expect("estimator");
    let budget = est.breakdown(1000, 1, KvType::F16, UBATCH).total();
    let ok = check("tiny.gguf", &f, &opts(Ctx::Tokens(1000)), &mem(budget)).expect("fits");
    assert!(ok.fits);
    let e = check("tiny.gguf", &f, &opts(Ctx::Tokens(4000)), &mem(budget)).expect_err("too big");
    let PlanError::DoesNotFit(d) = &e else {
        panic!("{e}")
    };
    assert_eq!(d.plan.max_ctx, Some(1000));
    let msg = e.to_string();
    for part in [
        "tiny.gguf",
        "4000-token context",
        "--ctx 1000",
        "smaller quantization",
        "HEARTH_MEMORY_LIMIT",
    ] {
        assert!(msg.contains(part), "'{part}' missing from: {msg}");
    }
    let e = check("tiny.gguf", &f, &opts(Ctx::Auto), &mem(1000)).expect_err("nothing fits");
    assert!(e.to_string().contains("smallest context"), "{e}");
}

#[test]
fn bad_options_are_errors() {
    let f = file(&spec(Arch::Llama));
    for o in [
        opts(Ctx::Tokens(0)),
        opts(Ctx::Tokens(hearth_plan::MAX_CTX + 1)),
        Options {
            parallel: 0,
            ..Options::default()
        },
        Options {
            parallel: 1 << 20,
            ..Options::default()
        },
    ] {
        let e = plan("m", &f, &o, &mem(LOTS)).expect_err("refused");
        assert!(matches!(e, PlanError::BadOptions(_)), "{e}");
        let e = plan_repo(&f, &[], &o, &mem(LOTS)).expect_err("refused");
        assert!(matches!(e, PlanError::BadOptions(_)), "{e}");
    }
    for (s, ok) in [
        ("auto", true),
        ("AUTO", true),
        ("2048", true),
        ("0", true), // refused by plan(), above
        ("-1", false),
        ("lots", false),
        ("99999999", true),
    ] {
        assert_eq!(s.parse::<Ctx>().is_ok(), ok, "{s}");
    }
}

#[test]
fn a_file_that_is_not_a_model_is_an_error() {
    let mut w = hearth_gguf::GgufWriter::new();
    w.set("general.architecture", hearth_gguf::Value::from("mamba"));
    let f = GgufFile::from_bytes(w.to_bytes().expect("bytes")).expect("parses");
    let e = plan("m", &f, &Options::default(), &mem(LOTS)).expect_err("unknown arch");
    assert!(e.to_string().contains("mamba"), "{e}");
}

#[test]
fn header_from_a_prefix_plans_like_the_whole_file() {
    let s = spec(Arch::Gemma3);
    let bytes = build(&s);
    let whole = GgufFile::from_bytes(bytes.clone()).expect("whole");
    let head = bytes[..whole.data_offset() as usize].to_vec();
    let prefix = GgufFile::from_prefix(head, bytes.len() as u64).expect("prefix");
    let a = plan("m", &whole, &opts(Ctx::Tokens(2048)), &mem(LOTS)).expect("plan");
    let b = plan("m", &prefix, &opts(Ctx::Tokens(2048)), &mem(LOTS)).expect("plan");
    assert_eq!(serde_json::to_value(&a).ok(), serde_json::to_value(&b).ok());
    // A header alone cannot be run.
    let e = Model::from_file(Arc::new(prefix))
        .err()
        .expect("no tensor data");
    assert!(e.to_string().contains("tensor data"), "{e}");
}

#[test]
fn repository_quantizations() {
    let mut s = spec(Arch::Llama);
    s.weight_type = GgmlType::Q8_0;
    let bytes = build(&s);
    let f = GgufFile::from_bytes(bytes.clone()).expect("parses");
    let size = bytes.len() as u64;
    let data = size - f.data_offset();
    let files = vec![
        ("README.md".to_string(), 5000),
        ("tiny-Q8_0.gguf".to_string(), size),
        ("tiny-Q4_K_M.gguf".to_string(), f.data_offset() + data / 2),
        ("tiny-F16-00002-of-00002.gguf".to_string(), size),
        ("tiny-F16-00001-of-00002.gguf".to_string(), size),
        ("mmproj-tiny-f16.gguf".to_string(), 10 << 20),
    ];
    let q8 = plan("m", &f, &opts(Ctx::Tokens(256)), &mem(LOTS)).expect("plan");
    // Room for the Q8_0 file but not for twice its weights.
    let budget = q8.total + q8.weights / 2;
    let list = plan_repo(&f, &files, &opts(Ctx::Tokens(256)), &mem(budget)).expect("repo");
    let names: Vec<&str> = list.iter().map(|q| q.quant.as_str()).collect();
    assert_eq!(names, ["Q4_K_M", "Q8_0", "F16"]);
    let fits: Vec<bool> = list.iter().map(|q| q.fits).collect();
    assert_eq!(fits, [true, true, false]);
    // The file the header came from plans exactly as it does alone.
    assert_eq!(list[1].total, q8.total);
    assert_eq!(list[1].files, ["tiny-Q8_0.gguf"]);
    assert_eq!(
        list[2].files,
        [
            "tiny-F16-00001-of-00002.gguf",
            "tiny-F16-00002-of-00002.gguf"
        ]
    );
    assert_eq!(list[2].size, 2 * size);
    assert!(list[0].total < q8.total);
    let table = hearth_plan::repo_table(&list);
    assert!(table.contains("Q4_K_M") && table.contains("no"), "{table}");
    // With auto, each gets its own largest context.
    let auto = plan_repo(&f, &files, &opts(Ctx::Auto), &mem(budget)).expect("repo");
    assert!(auto[0].n_ctx >= auto[1].n_ctx);
    assert_eq!(auto[0].max_ctx, Some(auto[0].n_ctx));
}
