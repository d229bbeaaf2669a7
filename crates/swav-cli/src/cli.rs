//! The command line: subcommands and flags (clap).
//!
//! Hyper-parameter flags carry the official `main_swav.py` names with dashes
//! (`--nmb-prototypes`); the official underscore spellings (`--nmb_prototypes`) are accepted
//! too, so existing launch scripts translate directly.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{ArchName, Device, OnCollapse, SinkhornMode, SyncBn};
use crate::presets::Preset;
use crate::recipe_candidates::RecipeCandidate;

/// SwAV self-supervised pretraining, evaluation and export.
#[derive(Debug, Parser)]
#[command(name = "swav", version, about, long_about = None, propagate_version = true, args_override_self = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Pretrain a ResNet with SwAV (with no arguments: the demo on the built-in dataset).
    Pretrain(Box<PretrainArgs>),
    /// Train the same network with the labels (same flags, data and steps as `pretrain`):
    /// the supervised yardstick for a SwAV recipe's k-NN.
    Supervised(Box<PretrainArgs>),
    /// Evaluate frozen features: k-NN or a linear probe.
    #[command(subcommand)]
    Eval(EvalCommand),
    /// Write the pooled trunk features of a folder of images to a .npy file.
    Extract(ExtractArgs),
    /// Cluster assignments: of images through a trained model, or Sinkhorn codes of given
    /// embeddings and prototypes (.npy), soft or hard.
    Assign(AssignArgs),
    /// Export a checkpoint's weights as torchvision-compatible safetensors.
    Export(ExportArgs),
    /// Import torchvision or official SwAV weights (safetensors) as a swav checkpoint.
    Import(ImportArgs),
    /// Pack a folder of images into WebDataset shards (PREFIX-000000.tar, ...) that
    /// `swav pretrain --data` streams.
    Shard(ShardArgs),
    /// Time training steps on synthetic inputs (images/s), for speed comparisons.
    Bench(BenchArgs),
    /// Draw a run folder's training curves into RUN_DIR/curves.svg (and a TensorBoard event
    /// file) and print where it stands (also done at the end of every `swav pretrain`).
    Report(ReportArgs),
}

/// `swav report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The `--output` folder of a `swav pretrain` run (finished, stopped or running).
    #[arg(value_name = "RUN_DIR")]
    pub run: PathBuf,
}

/// `swav pretrain`.
#[derive(Debug, Args)]
pub struct PretrainArgs {
    /// Start from this preset [default: demo without --data/--config, else defaults].
    #[arg(long, value_enum)]
    pub preset: Option<Preset>,
    /// A TOML file of settings (official key names; any subset; may set `preset`).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Training images: an ImageFolder-style or flat folder, an MNIST-format IDX folder
    /// (train-images-idx3-ubyte[.gz], ...), or WebDataset shards ('shards/train-{000000..000146}.tar'
    /// or a file listing shard paths; docs/datasets.md) [default: the built-in synthetic
    /// dataset]. Also `--data_path`.
    #[arg(long, alias = "data_path", value_name = "DIR|SHARDS")]
    pub data: Option<PathBuf>,
    /// Where checkpoints, metrics and the resolved config go. Also `--dump_path`.
    #[arg(
        long,
        alias = "dump_path",
        value_name = "DIR",
        default_value = "runs/swav"
    )]
    pub output: PathBuf,
    /// Continue the run in --output from its last checkpoint. `--resume` alone requires one;
    /// `--resume auto` continues when one exists and starts a new run otherwise, so one
    /// command line serves a requeued Slurm job or a torchrun restart.
    #[arg(long, value_enum, num_args = 0..=1, default_missing_value = "required", value_name = "WHEN")]
    pub resume: Option<ResumeMode>,
    /// Start from the weights of this checkpoint or safetensors file (not its optimizer).
    #[arg(long, value_name = "FILE")]
    pub init_weights: Option<PathBuf>,
    /// Stop after this many iterations of this invocation (the run can be resumed).
    #[arg(long, value_name = "N")]
    pub max_iterations: Option<u64>,
    /// Multi-GPU: hand rank 0's NCCL id to the others through this file on a shared
    /// filesystem (unique per job) instead of TCP at MASTER_ADDR:MASTER_PORT+1.
    #[arg(long, value_name = "FILE")]
    pub rendezvous_file: Option<PathBuf>,
    /// Multi-process runs: a rank whose step makes no progress for this many seconds (a
    /// peer died inside a collective) stops with a clear error and exit status 3, so the
    /// launcher ends the job; 0 waits forever.
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub collective_timeout: u64,
    /// Multi-process runs: a rank still waiting for its peers this many seconds after it
    /// started (MPI initialisation, the NCCL rendezvous and communicator, the first
    /// collective) stops with one line naming what it waited for and exit status 3; 0 waits
    /// forever.
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub startup_timeout: u64,
    /// Multi-process runs: gradients are summed over ranks in buckets of this many MiB,
    /// each sent as soon as backward completes it (as PyTorch DDP); 0: one per tensor.
    #[arg(long, value_name = "MB", default_value_t = swav_train::DEFAULT_BUCKET_CAP_MB)]
    pub bucket_cap_mb: usize,
    /// The official scripts' rendezvous: `env://` (the launcher's variables, the default) or
    /// `tcp://HOST:PORT`, rank 0's host and port (the NCCL id then goes over PORT + 1).
    #[arg(long, alias = "dist_url", value_name = "URL")]
    pub dist_url: Option<String>,
    /// This process's rank on its node, as `python -m torch.distributed.launch` passes it
    /// (it picks the GPU, like LOCAL_RANK) [the launcher's LOCAL_RANK, else 0].
    #[arg(long, alias = "local_rank", value_name = "N")]
    pub local_rank: Option<usize>,
    /// The official scripts' mixed precision, accepted so their command lines run: the CUDA
    /// backend always trains the trunk in bf16 (head, Sinkhorn and loss in f32), the CPU
    /// backend in f32; the run says which in one line.
    #[arg(long, alias = "use_fp16", value_name = "BOOL")]
    pub use_fp16: Option<bool>,
    /// Print the resolved configuration as TOML and exit.
    #[arg(long)]
    pub print_config: bool,
    /// Hyper-parameter overrides.
    #[command(flatten)]
    pub overrides: Box<Overrides>,
}

/// When `--resume` continues a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ResumeMode {
    /// A checkpoint must exist (plain `--resume`).
    Required,
    /// Resume when a checkpoint exists, else start a new run.
    Auto,
}

/// Every hyper-parameter as an optional override (SwAV defaults in brackets).
#[derive(Debug, Args, Default)]
#[command(next_help_heading = "Hyper-parameters (official names; SwAV defaults in brackets)")]
pub struct Overrides {
    /// Crops per resolution group [2] (recipe: 2 6).
    #[arg(long, alias = "nmb_crops", num_args = 1.., value_name = "N")]
    pub nmb_crops: Option<Vec<usize>>,
    /// Crop sizes per group [224] (recipe: 224 96).
    #[arg(long, alias = "size_crops", num_args = 1.., value_name = "PX")]
    pub size_crops: Option<Vec<usize>>,
    /// RandomResizedCrop min scale per group [0.14] (recipe: 0.14 0.05).
    #[arg(long, alias = "min_scale_crops", num_args = 1.., value_name = "S")]
    pub min_scale_crops: Option<Vec<f64>>,
    /// RandomResizedCrop max scale per group [1] (recipe: 1 0.14).
    #[arg(long, alias = "max_scale_crops", num_args = 1.., value_name = "S")]
    pub max_scale_crops: Option<Vec<f64>>,
    /// Colour distortion strength s [1.0]: jitter 0.8·s, hue 0.2·s.
    #[arg(long, value_name = "S")]
    pub color_jitter_strength: Option<f64>,
    /// Gaussian blur probability [0.5].
    #[arg(long, value_name = "P")]
    pub blur_probability: Option<f64>,
    /// Greyscale probability [0.2].
    #[arg(long, value_name = "P")]
    pub grayscale_probability: Option<f64>,
    /// Probability of rotating a crop [0: off, as in SwAV's recipes]; for data whose
    /// classes do not depend on orientation.
    #[arg(long, value_name = "P")]
    pub rotation_probability: Option<f64>,
    /// A rotated crop turns by a uniform angle within ± this many degrees [180].
    #[arg(long, value_name = "DEG")]
    pub rotation_degrees: Option<f64>,
    /// Crops whose codes are targets [0 1].
    #[arg(long, alias = "crops_for_assign", num_args = 1.., value_name = "I")]
    pub crops_for_assign: Option<Vec<usize>>,
    /// Softmax temperature τ [0.1].
    #[arg(long, value_name = "T")]
    pub temperature: Option<f64>,
    /// Sinkhorn ε [0.05].
    #[arg(long, value_name = "E")]
    pub epsilon: Option<f64>,
    /// Sinkhorn iterations [3].
    #[arg(long, alias = "sinkhorn_iterations", value_name = "N")]
    pub sinkhorn_iterations: Option<usize>,
    /// Sinkhorn numerics [stable]; `plain` is the official code as is.
    #[arg(long, value_enum)]
    pub sinkhorn_mode: Option<SinkhornMode>,
    /// Embedding dimension D [128].
    #[arg(long, alias = "feat_dim", value_name = "D")]
    pub feat_dim: Option<usize>,
    /// Number of prototypes K [3000].
    #[arg(long, alias = "nmb_prototypes", value_name = "K")]
    pub nmb_prototypes: Option<usize>,
    /// Total queue length, rounded down to a multiple of the global batch; 0 = none [0].
    #[arg(long, alias = "queue_length", value_name = "N")]
    pub queue_length: Option<usize>,
    /// Epoch at which the queue starts [15].
    #[arg(long, alias = "epoch_queue_starts", value_name = "EPOCH")]
    pub epoch_queue_starts: Option<u64>,
    /// Training epochs [100].
    #[arg(long, value_name = "N")]
    pub epochs: Option<u64>,
    /// Images per rank per step [64].
    #[arg(long, alias = "batch_size", value_name = "N")]
    pub batch_size: Option<usize>,
    /// Peak learning rate, absolute [4.8].
    #[arg(long, alias = "base_lr", value_name = "LR")]
    pub base_lr: Option<f64>,
    /// Final learning rate of the cosine [0].
    #[arg(long, alias = "final_lr", value_name = "LR")]
    pub final_lr: Option<f64>,
    /// Iterations with frozen prototypes [313].
    #[arg(long, alias = "freeze_prototypes_niters", value_name = "N")]
    pub freeze_prototypes_niters: Option<u64>,
    /// Weight decay [1e-6].
    #[arg(long, value_name = "WD")]
    pub wd: Option<f64>,
    /// Warm-up epochs [10].
    #[arg(long, alias = "warmup_epochs", value_name = "N")]
    pub warmup_epochs: Option<u64>,
    /// First warm-up learning rate [0].
    #[arg(long, alias = "start_warmup", value_name = "LR")]
    pub start_warmup: Option<f64>,
    /// SGD momentum [0.9].
    #[arg(long, value_name = "M")]
    pub momentum: Option<f64>,
    /// LARC trust coefficient [0.001].
    #[arg(long, value_name = "ETA")]
    pub lars_trust: Option<f64>,
    /// Exclude biases and norm parameters from LARC and weight decay [off].
    #[arg(long, value_name = "BOOL")]
    pub lars_exclude_bias_and_norm: Option<bool>,
    /// apex LARC `clip`: cap the adapted rate at the scheduled one [off].
    #[arg(long, alias = "lars_clip", value_name = "BOOL")]
    pub lars_clip: Option<bool>,
    /// Trunk [resnet50].
    #[arg(long, value_enum)]
    pub arch: Option<ArchName>,
    /// Channels of the first stage [64].
    #[arg(long, value_name = "C")]
    pub base_width: Option<usize>,
    /// 3×3 stride-1 stem without max-pool, for 32-96 px images [off].
    #[arg(long, value_name = "BOOL")]
    pub small_stem: Option<bool>,
    /// Projection head hidden width; 0 = a single linear layer [2048].
    #[arg(long, alias = "hidden_mlp", value_name = "N")]
    pub hidden_mlp: Option<usize>,
    /// Backend [cpu].
    #[arg(long, value_enum)]
    pub device: Option<Device>,
    /// Data-loading threads [10].
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Seed of initialisation, shuffles and augmentations [31].
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Keep a numbered checkpoint copy every N epochs [25].
    #[arg(long, alias = "checkpoint_freq", value_name = "N")]
    pub checkpoint_freq: Option<u64>,
    /// Also checkpoint every N iterations; 0 = epoch ends only [0].
    #[arg(long, value_name = "N")]
    pub checkpoint_every_iters: Option<u64>,
    /// BatchNorm synchronisation across ranks [global].
    #[arg(long, alias = "sync_bn", value_enum)]
    pub sync_bn: Option<SyncBn>,
    /// Ranks per SyncBN group with --sync-bn groups [8].
    #[arg(long, alias = "syncbn_process_group_size", value_name = "N")]
    pub syncbn_process_group_size: Option<usize>,
    /// Log metrics every N iterations [50].
    #[arg(long, value_name = "N")]
    pub log_every: Option<u64>,
    /// After training, compare k-NN accuracy of the trained and a random network.
    #[arg(long, value_name = "BOOL")]
    pub eval_knn: Option<bool>,
    /// Also evaluate k-NN of the trained network every N epochs while training, for the
    /// k-NN curve (needs the built-in dataset, train/ and val/ under --data, or an IDX
    /// folder: train against t10k); 0 = never [0].
    #[arg(long, value_name = "N")]
    pub eval_knn_every: Option<u64>,
    /// On collapse (the loss at ln K, or too few prototypes in use, for an epoch): `stop`,
    /// `warn` (train on), or `adapt`: go back to the last healthy epoch, change the setting
    /// the diagnosis points to (epsilon, temperature, learning rate or freeze) and train on,
    /// at most 3 times [warn].
    #[arg(long, value_enum, value_name = "WHAT")]
    pub on_collapse: Option<OnCollapse>,
    /// Before training, probe each candidate recipe (plain, grey-crops, large-crops,
    /// rotated-crops) for N iterations and train the one whose features have the highest
    /// effective rank without collapse; the scores go to recipe-choice.json. One process only
    /// [small-data: 200, else 0 = off].
    #[arg(long, value_name = "N")]
    pub recipe_probe_iterations: Option<u64>,
    /// Apply this candidate recipe without probing (the flags given beside it still win)
    /// [none].
    #[arg(long, value_enum, value_name = "NAME")]
    pub recipe: Option<RecipeCandidate>,
    /// With the recipe probes: the whole run's wall time in minutes; after the probes the
    /// winner trains as many epochs as fit in what is left (k-NN evaluations set aside),
    /// replacing --epochs. Giving --epochs alone turns a preset's budget off. 0 = no budget
    /// [small-data: 15, else 0].
    #[arg(
        long = "time-budget",
        value_name = "MINUTES",
        allow_negative_numbers = true
    )]
    pub time_budget_minutes: Option<f64>,
    /// Synthetic dataset: classes [10].
    #[arg(long, value_name = "N")]
    pub synthetic_classes: Option<usize>,
    /// Synthetic dataset: training images per class [200].
    #[arg(long, value_name = "N")]
    pub synthetic_images_per_class: Option<usize>,
    /// Synthetic dataset: image side [32].
    #[arg(long, value_name = "PX")]
    pub synthetic_image_size: Option<usize>,
    /// Synthetic dataset: grey levels instead of colours [demo: true, else false].
    #[arg(long, value_name = "BOOL")]
    pub synthetic_monochrome: Option<bool>,
    /// Synthetic dataset: shapes turn within ± this many degrees; 180 is any orientation
    /// [demo: 15, else 180].
    #[arg(long, value_name = "DEG")]
    pub synthetic_max_rotation_degrees: Option<u32>,
    /// Synthetic dataset: a flat background without texture, clutter lines or noise
    /// [demo: true, else false].
    #[arg(long, value_name = "BOOL")]
    pub synthetic_plain_background: Option<bool>,
    /// Synthetic dataset: the seed of its images, train and validation alike [0: the
    /// built-in dataset].
    #[arg(long, value_name = "N")]
    pub synthetic_seed: Option<u64>,
    /// --data: train on the first N images of each class, in file order (IDX or ImageFolder;
    /// also the k-NN memory); 0 = every image [0].
    #[arg(
        long = "images-per-class",
        alias = "data-images-per-class",
        value_name = "N"
    )]
    pub data_images_per_class: Option<usize>,
    /// --data: k-NN validates on the first N images of each class of t10k (IDX) or val/;
    /// 0 = every image [0].
    #[arg(long, value_name = "N")]
    pub eval_images_per_class: Option<usize>,
    /// Stop on the first unreadable image instead of skipping it.
    #[arg(long)]
    pub strict_data: bool,
    /// --data shards: samples held by the shuffle buffer each rank streams through [1000].
    #[arg(long, value_name = "N")]
    pub shuffle_buffer: Option<usize>,
}

/// `swav eval ...`.
#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Weighted k-NN on frozen features (cosine, exp(sim/0.07) votes, k 20 and 200).
    Knn(KnnArgs),
    /// A linear classifier on frozen features (SGD lr 0.3, cosine, wd 1e-6; shorter than
    /// the official 100 epochs by default).
    Linear(LinearArgs),
    /// Fine-tune the whole network with a linear head on 1 % or 10 % of the labels (the
    /// official `eval_semisup.py`: SGD, 20 epochs, step decay); top-1 and top-5 on val.
    Semisup(SemisupArgs),
}

/// Where the evaluated weights and images come from.
#[derive(Debug, Args)]
pub struct ModelAndData {
    /// A swav checkpoint, or torchvision / official SwAV weights as safetensors.
    #[arg(long, value_name = "FILE")]
    pub weights: PathBuf,
    /// A folder with `train/` and `val/` image folders, or an MNIST-format IDX folder (train
    /// against t10k) [default: the synthetic dataset's train and validation splits].
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Evaluation crop size [the model's training size for checkpoints, else 224].
    #[arg(long, value_name = "PX")]
    pub image_size: Option<usize>,
    /// --data: keep the first N training images of each class, in file order; 0 = all [0].
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub images_per_class: usize,
    /// --data: keep the first N validation (t10k or val/) images of each class; 0 = all [0].
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub eval_images_per_class: usize,
    /// Images per forward pass.
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub batch_size: usize,
    /// Decoding threads.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub workers: usize,
    /// Backend.
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: Device,
}

/// `swav eval knn`.
#[derive(Debug, Args)]
pub struct KnnArgs {
    /// Model and images.
    #[command(flatten)]
    pub source: ModelAndData,
    /// Neighbour counts.
    #[arg(long, num_args = 1.., default_values_t = [20, 200], value_name = "K")]
    pub k: Vec<usize>,
    /// Vote temperature.
    #[arg(long, default_value_t = 0.07, value_name = "T")]
    pub temperature: f32,
}

/// `swav eval linear`.
#[derive(Debug, Args)]
pub struct LinearArgs {
    /// Model and images.
    #[command(flatten)]
    pub source: ModelAndData,
    /// Epochs of the classifier (official: 100).
    #[arg(long, default_value_t = 30, value_name = "N")]
    pub epochs: usize,
    /// Learning rate (official 0.3, cosine to 0, per epoch).
    #[arg(long, default_value_t = 0.3, value_name = "LR")]
    pub lr: f64,
    /// Weight decay (official 1e-6).
    #[arg(long, default_value_t = 1e-6, value_name = "WD")]
    pub wd: f64,
    /// Classifier batch size (official 256).
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub classifier_batch: usize,
    /// Train on RandomResizedCrop + flip features recomputed every epoch (the official
    /// protocol; slow on the CPU) instead of fixed centre-crop features.
    #[arg(long)]
    pub augment: bool,
    /// Seed of the classifier's initialisation and shuffles.
    #[arg(long, default_value_t = 31, value_name = "N")]
    pub seed: u64,
}

/// `swav eval semisup`: the official semi-supervised protocol (defaults: its 10 % recipe).
#[derive(Debug, Args)]
pub struct SemisupArgs {
    /// Model and images (`--batch-size` is the validation pass's).
    #[command(flatten)]
    pub source: ModelAndData,
    /// Images per fine-tuning step (official: 32 per GPU on 8 GPUs, 256).
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub fine_tune_batch: usize,
    /// The share of each class's training images whose labels are used, in % (official: 1
    /// or 10; a class-balanced, evenly spread subset).
    #[arg(
        long,
        alias = "labels_perc",
        default_value_t = 10.0,
        value_name = "PERCENT"
    )]
    pub labels_percent: f64,
    /// Epochs (official 20).
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub epochs: usize,
    /// The trunk's learning rate (official: 0.01 for 10 %, 0.02 for 1 %).
    #[arg(long, default_value_t = 0.01, value_name = "LR")]
    pub lr: f64,
    /// The linear head's learning rate (official: 0.2 for 10 %, 5 for 1 %).
    #[arg(
        long,
        alias = "lr_last_layer",
        default_value_t = 0.2,
        value_name = "LR"
    )]
    pub lr_last_layer: f64,
    /// Epochs at which both rates are multiplied by --gamma (official 12 16).
    #[arg(long, alias = "decay_epochs", num_args = 1.., default_values_t = [12, 16], value_name = "EPOCH")]
    pub decay_epochs: Vec<usize>,
    /// The decay factor (official 0.2).
    #[arg(long, default_value_t = 0.2, value_name = "F")]
    pub gamma: f64,
    /// Seed of the head's initialisation and the shuffles.
    #[arg(long, default_value_t = 31, value_name = "N")]
    pub seed: u64,
}

/// `swav extract`.
#[derive(Debug, Args)]
pub struct ExtractArgs {
    /// A swav checkpoint, or torchvision / official SwAV weights as safetensors.
    #[arg(long, value_name = "FILE")]
    pub weights: PathBuf,
    /// A folder of images (ImageFolder layout or flat).
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Output .npy of shape (images, features); the source path of each row goes to
    /// `<output>.paths.txt`, and for an ImageFolder layout the labels to `<output>.labels.npy`.
    #[arg(long, value_name = "FILE")]
    pub output: PathBuf,
    /// Evaluation crop size [the model's training size for checkpoints, else 224].
    #[arg(long, value_name = "PX")]
    pub image_size: Option<usize>,
    /// Images per forward pass.
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub batch_size: usize,
    /// Decoding threads.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub workers: usize,
}

/// `swav assign`.
#[derive(Debug, Args)]
pub struct AssignArgs {
    /// Embeddings (N × D .npy, f32 or f64): assign them with Sinkhorn.
    #[arg(long, value_name = "FILE", requires = "prototypes", conflicts_with_all = ["weights", "data"])]
    pub embeddings: Option<PathBuf>,
    /// Prototypes (K × D .npy, f32 or f64), with --embeddings.
    #[arg(long, value_name = "FILE")]
    pub prototypes: Option<PathBuf>,
    /// A trained swav checkpoint: assign images to its prototypes.
    #[arg(long, value_name = "FILE", requires = "data")]
    pub weights: Option<PathBuf>,
    /// Images to assign, with --weights.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Output .npy: soft codes (N × K, f32) or, with --hard, cluster indices (N, i64); with
    /// --data, the source path of each row goes to `<output>.paths.txt`.
    #[arg(long, value_name = "FILE")]
    pub output: PathBuf,
    /// Write the arg-max cluster of each sample instead of soft codes.
    #[arg(long)]
    pub hard: bool,
    /// Sinkhorn ε.
    #[arg(long, default_value_t = 0.05, value_name = "E")]
    pub epsilon: f64,
    /// Sinkhorn iterations.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub iterations: usize,
    /// L2-normalise embeddings and prototypes first (SwAV scores are cosines) [on].
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub normalize: bool,
    /// Evaluation crop size for --data [the model's training size].
    #[arg(long, value_name = "PX")]
    pub image_size: Option<usize>,
}

/// `swav export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// A swav checkpoint.
    #[arg(long, value_name = "FILE")]
    pub checkpoint: PathBuf,
    /// The safetensors file to write.
    #[arg(long, value_name = "FILE")]
    pub output: PathBuf,
    /// The official SwAV layout: `module.`-prefixed keys with the projection head and the
    /// prototypes, instead of a torchvision trunk.
    #[arg(long)]
    pub official_layout: bool,
}

/// `swav import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// torchvision or official SwAV weights as safetensors (`module.` prefixes are stripped;
    /// convert .pth files with scripts/convert_pth_to_safetensors.py).
    #[arg(long, value_name = "FILE")]
    pub weights: PathBuf,
    /// The swav checkpoint to write.
    #[arg(long, value_name = "FILE")]
    pub output: PathBuf,
}

/// `swav shard`.
#[derive(Debug, Args)]
pub struct ShardArgs {
    /// The images: an ImageFolder (class sub-folders; the class number goes to `.cls`), a
    /// flat folder, or an MNIST-format IDX folder (its training split); of a folder with
    /// `train/` and `val/`, its `train/`.
    #[arg(value_name = "DIR")]
    pub data: PathBuf,
    /// Shards are written as PREFIX-000000.tar, PREFIX-000001.tar, ..., with
    /// PREFIX-manifest.tsv saying which source file each key came from.
    #[arg(long, value_name = "PREFIX")]
    pub output: PathBuf,
    /// Samples per shard [1000].
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub shard_size: usize,
    /// The samples are written in an order shuffled from this seed, so that a shuffle
    /// buffer mixes classes [0].
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub seed: u64,
    /// Write the samples in the folder's order instead.
    #[arg(long)]
    pub keep_order: bool,
}

/// `swav bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Start from this preset's model and crops.
    #[arg(long, value_enum, default_value = "imagenet-64gpu")]
    pub preset: Preset,
    /// Timed steps (after two warm-up steps).
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub steps: usize,
    /// Hyper-parameter overrides (crops, architecture, ...); `--device` and
    /// `--batch-size` among them choose the backend and the images per step.
    #[command(flatten)]
    pub overrides: Box<Overrides>,
}

impl BenchArgs {
    /// Images per step when `--batch-size` is not given (small, so a CPU step is quick).
    pub const DEFAULT_BATCH_SIZE: usize = 8;

    /// The backend: `--device`, else the CPU.
    pub fn device(&self) -> Device {
        self.overrides.device.unwrap_or(Device::Cpu)
    }

    /// Images per step: `--batch-size`, else [`Self::DEFAULT_BATCH_SIZE`].
    pub fn batch_size(&self) -> usize {
        self.overrides
            .batch_size
            .unwrap_or(Self::DEFAULT_BATCH_SIZE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// clap checks its definitions (unique names, valid defaults, ...) only in debug
    /// builds and only when a command is built: this test builds every subcommand.
    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn bench_takes_device_and_batch_size_from_the_shared_flags() {
        let Command::Bench(args) =
            Cli::try_parse_from(["swav", "bench", "--device", "cuda", "--batch-size", "4"])
                .unwrap()
                .command
        else {
            unreachable!()
        };
        assert_eq!((args.device(), args.batch_size()), (Device::Cuda, 4));
        let Command::Bench(args) = Cli::try_parse_from(["swav", "bench"]).unwrap().command else {
            unreachable!()
        };
        assert_eq!(
            (args.device(), args.batch_size()),
            (Device::Cpu, BenchArgs::DEFAULT_BATCH_SIZE)
        );
    }
}
