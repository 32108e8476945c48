//! Command-line interface (clap derive). Kept free of logic: each subcommand's arguments
//! are handed to its module.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "silirep",
    version,
    about = "Measure what a machine can do for ML, and turn results from many machines into \
             committed, regenerable reports.",
    after_help = "Examples:\n  silirep measure                      # CPU quick-to-standard run into results/raw/<machine>/\n  silirep report results/ -o reports/  # rebuild the reports from every result file\n  silirep schema > run-v1.schema.json  # the JSON Schema of a result file"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run micro-benchmarks on this machine and write one result file.
    #[command(
        after_help = "Examples:\n  silirep measure\n  silirep measure --suite quick\n  silirep measure --backend cuda --kernels gemm,attention --dtypes f16,bf16\n  silirep measure --kernels gemm --sizes 1024,2048 --label \"My workstation\"\n  silirep measure --kernels bandwidth_triad --sizes 256MiB,1GiB --list\n  silirep measure --json > run.json\n\nSizes: SI prefixes are decimal (4k = 4000, 1GB = 10^9 bytes), IEC prefixes binary (4Ki = 4096,\n1GiB = 2^30 bytes); bandwidth sizes are bytes and need a byte unit, the others are counts."
    )]
    Measure(MeasureArgs),
    /// Build reports from a directory of result files.
    #[command(
        after_help = "Examples:\n  silirep report results/ -o reports/\n  silirep report results/ -o reports/ --check   # CI: exit 1 if reports/ is stale\n  silirep report results/imported/mac-ml-benchmark -o /tmp/m5-vs-m4pro\n  silirep report results/ -o reports/ --analyses my-analyses.toml"
    )]
    Report(ReportArgs),
    /// Compare two runs, folders of runs or machines: change per configuration with its 95% CI
    /// and significance, "~" where there is none.
    #[command(
        after_help = "Examples:\n  silirep compare results/raw/x/run1.json results/raw/x/run2.json\n  silirep compare --results results/ \"H100 80GB HBM3 (lent)\" \"H200 141GB HBM3e (lent)\"\n  silirep compare old/ new/ --format csv\n  silirep compare base.json head.json --fail-on-regression 5   # CI gate: exit 1 on a significant slowdown > 5%"
    )]
    Compare(CompareArgs),
    /// The other end of a network link benchmark: `silirep link serve` on one machine,
    /// `silirep measure --peer HOST:PORT` on the other.
    #[command(subcommand)]
    Link(LinkCommand),
    /// Predict a model's prefill, TTFT, decode and training bounds from measured roofs: one
    /// machine, or prefill on one and decode on another over a link.
    #[command(
        after_help = "Examples:\n  silirep predict results/ --machine \"Apple M5\"\n  silirep predict results/ --model mistral-7b --prefill \"Apple M5\" --decode \"Apple M4 Pro\" --link 37.6Gbps\n  silirep predict results/ --model llama-3-8b --machine nvidia-h200-8f0cc4b3 --json\n\nModels: mistral-7b, llama-3-8b, llama-3-70b, mixtral-8x7b (f16). Without --link, two\nmachines are joined by the slower of their datasheet links, and the output says so."
    )]
    Predict(PredictArgs),
    /// Print the JSON Schema of a result file (results schema v1).
    #[command(after_help = "Example:\n  silirep schema > run-v1.schema.json")]
    Schema,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SuiteArg {
    Quick,
    Standard,
    Full,
}

/// Parsed by `measure::backends::parse_backend_arg`, which suggests the right name for
/// common wrong ones (`gpu`, `nvidia`, `mps`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    /// The best available: cuda, else metal, else cpu (says which it picked).
    Auto,
    Cpu,
    Cuda,
    Metal,
}

#[derive(Debug, clap::Args)]
pub struct MeasureArgs {
    /// How much to measure: quick (< 1 min on a laptop CPU), standard, full.
    #[arg(long, value_enum, default_value = "standard")]
    pub suite: SuiteArg,
    /// Comma-separated kernel names or families, e.g. gemm,bandwidth_triad,attention.
    #[arg(long, value_delimiter = ',')]
    pub kernels: Vec<String>,
    /// Comma-separated dtypes, e.g. f32,f16,bf16.
    #[arg(long, value_delimiter = ',')]
    pub dtypes: Vec<String>,
    /// Comma-separated sizes, replacing the suite's. What a size is depends on the kernel:
    /// GEMM m = n = k, attention and layer sequence length, decode batch, sweep FMAs per
    /// element are plain numbers (4096; 4k = 4000, 4Ki = 4096); bandwidth arrays are bytes
    /// with a unit (256MiB = 256·2^20, 256MB = 256·10^6; also B, kB, GB, KiB, GiB). SI
    /// prefixes are decimal, IEC (Ki, Mi, Gi) binary. A size in the wrong unit for a kernel
    /// is an error.
    #[arg(long, value_delimiter = ',')]
    pub sizes: Vec<String>,
    /// Attention with the causal mask (query i attends to keys 0..=i), counted as half the
    /// FLOPs of the full product; other kernels are unaffected.
    #[arg(long)]
    pub causal: bool,
    /// auto (cuda, else metal, else cpu), cpu, cuda (NVIDIA) or metal (Apple).
    #[arg(
        long,
        default_value = "auto",
        value_parser = crate::measure::backends::parse_backend_arg
    )]
    pub backend: BackendArg,
    /// Print the configurations the selection would run (with sizes, units and an estimated
    /// duration) and exit: nothing is measured and no result file is written.
    #[arg(long, visible_alias = "dry-run")]
    pub list: bool,
    /// Machine name shown in reports (default: accelerator or CPU model).
    #[arg(long)]
    pub label: Option<String>,
    /// Results directory; the file goes to <out>/raw/<machine id>/.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    /// Also print the finished run as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// GPUs (CUDA ordinals) for interconnect kernels, e.g. 0,1 (default: every visible GPU);
    /// single-GPU kernels run on the first.
    #[arg(long, value_delimiter = ',')]
    pub gpus: Vec<u32>,
    /// A `silirep link serve` peer (HOST:PORT): adds the TCP link kernels (throughput to and
    /// from it over one and several streams, round trips) to the run.
    #[arg(long)]
    pub peer: Option<String>,
    /// Seconds to wait for the peer on any connect, read or write before recording the
    /// configuration as failed.
    #[arg(long, default_value_t = 10.0)]
    pub peer_timeout: f64,
    /// CPU threads, at least 1 (default: all available).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Stop adding repetitions when the 95% CI half-width of the median is within this much
    /// of it: a percentage (1%) or a fraction (0.01), below 100%.
    #[arg(long, default_value = "1%")]
    pub target_ci: String,
    /// Longest time spent timing one configuration, in seconds (default: 0.5 quick,
    /// 2 standard, 5 full).
    #[arg(long)]
    pub max_time: Option<f64>,
    /// Seconds each configuration keeps running untimed before timing starts, so clocks have
    /// settled to their sustained level (default: 0.1 quick, 1 standard, 2 full).
    #[arg(long)]
    pub warmup_time: Option<f64>,
    /// Seed for input data.
    #[arg(long, default_value_t = 0x5111_2e9)]
    pub seed: u64,
    /// Positions each decoded token attends over in its KV cache (its own included),
    /// replacing the suite's 1024; 0 decodes without attention. Needs a decode kernel in
    /// the selection.
    #[arg(long)]
    pub decode_context: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompareFormat {
    Markdown,
    Csv,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// The baseline: a run file, a folder of run files, or a machine's label or id in --results.
    pub old: String,
    /// The candidate, in the same forms.
    pub new: String,
    /// Results directory in which OLD and NEW may name machines (its repeated runs also give
    /// the noise floor).
    #[arg(long)]
    pub results: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "markdown")]
    pub format: CompareFormat,
    /// Exit 1 when a configuration is significantly slower (beyond the noise floor) by more
    /// than this percentage of its rate, e.g. 5 or 5%.
    #[arg(long, value_name = "PCT")]
    pub fail_on_regression: Option<String>,
    /// Run-to-run noise floor as a percentage, replacing the one derived from repeated runs
    /// (default where none can be derived: 3%).
    #[arg(long, value_name = "PCT")]
    pub noise_floor: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// A directory of result files (searched recursively) or one file.
    pub results: PathBuf,
    /// Output directory; nothing is written outside it.
    #[arg(short = 'o', long = "out")]
    pub out: PathBuf,
    /// Write nothing; exit 1 and list the files that would change.
    #[arg(long)]
    pub check: bool,
    /// Treat any problem (unreadable or unrecognised file, warning) as fatal: exit 1.
    #[arg(long)]
    pub strict: bool,
    /// Directory of tera templates overriding the built-in ones.
    #[arg(long)]
    pub templates: Option<PathBuf>,
    /// JSON datasheet catalog extending the built-in one (peak FLOP/s, bandwidth).
    #[arg(long)]
    pub catalog: Option<PathBuf>,
    /// TOML file choosing the analyses (default: `analyses.toml` in the results directory
    /// when there is one, else one analysis per machine class).
    #[arg(long)]
    pub analyses: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum LinkCommand {
    /// Answer link benchmarks until stopped (Ctrl-C).
    #[command(
        after_help = "Examples:\n  silirep link serve                          # on 0.0.0.0:5201\n  silirep link serve --listen 192.168.2.1:5201\n  # then, on the other machine:\n  silirep measure --peer 192.168.2.1:5201 --kernels interconnect"
    )]
    Serve(LinkServeArgs),
}

#[derive(Debug, clap::Args)]
pub struct LinkServeArgs {
    /// Address and port to listen on.
    #[arg(long, default_value = "0.0.0.0:5201")]
    pub listen: String,
    /// Seconds a silent connection is kept before it is dropped.
    #[arg(long, default_value_t = 30.0)]
    pub timeout: f64,
    /// Say what every connection did.
    #[arg(long)]
    pub verbose: bool,
}

#[derive(Debug, clap::Args)]
pub struct PredictArgs {
    /// A directory of result files (searched recursively) or one file.
    pub results: PathBuf,
    /// Model preset: mistral-7b, llama-3-8b, llama-3-70b, mixtral-8x7b.
    #[arg(long, default_value = "mistral-7b")]
    pub model: String,
    /// Prompt length in tokens.
    #[arg(long, default_value_t = 871)]
    pub prompt_tokens: u64,
    /// Tokens generated after the prompt.
    #[arg(long, default_value_t = 256)]
    pub new_tokens: u64,
    /// One machine to predict (its label or id).
    #[arg(long)]
    pub machine: Option<String>,
    /// The machine that prefills (label or id); needs --decode.
    #[arg(long)]
    pub prefill: Option<String>,
    /// The machine that decodes (label or id); needs --prefill.
    #[arg(long)]
    pub decode: Option<String>,
    /// Bandwidth of the link between --prefill and --decode, per direction: 37.6Gbps,
    /// 4.7GB/s, 400Mbps.
    #[arg(long)]
    pub link: Option<String>,
    /// Print the predictions as JSON.
    #[arg(long)]
    pub json: bool,
    /// JSON datasheet catalog extending the built-in one.
    #[arg(long)]
    pub catalog: Option<PathBuf>,
}
