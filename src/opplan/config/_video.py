"""Config of the video trainer (``trainer: {kind: video, ...}``)."""

from __future__ import annotations

import re
import warnings
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, StrictBool, model_validator

__all__ = ["DataConfig", "ModelConfig", "OptimConfig", "SyntheticConfig", "VideoTrainerConfig"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SyntheticConfig(_Strict):
    """Generate a built-in synthetic dataset into ``data.root`` if its lists are missing."""

    task: Literal["order", "tempo", "relay"] = Field(
        description="order: uniform wins; tempo: consecutive; relay: needs long spread clips"
    )
    videos_per_class: PositiveInt = 40
    size: PositiveInt = Field(32, description="frame side in pixels")
    seed: int = 0
    min_frames: PositiveInt = 64
    max_frames: PositiveInt = 192


DataFormat = Literal[
    "video_list",
    "frame_list",
    "reference_list",
    "slowfast_csv",
    "ucf101",
    "hmdb51",
    "kinetics",
    "ssv1",
    "ssv2",
    "activitynet",
]

# The files of each dataset as its download lays them out ({split}: data.split); §5.1 tests
# on the official validation set, so it is also the test list where there is no labelled test.
OFFICIAL_FILES: dict[str, dict[str, str]] = {
    "ucf101": {
        "train_list": "ucfTrainTestlist/trainlist0{split}.txt",
        "val_list": "ucfTrainTestlist/testlist0{split}.txt",
        "test_list": "ucfTrainTestlist/testlist0{split}.txt",
        "labels_file": "ucfTrainTestlist/classInd.txt",
        "videos": "UCF-101",
    },
    "hmdb51": {  # one folder of split files; train/test are its 1/2 marks
        "train_list": "testTrainMulti_7030_splits",
        "val_list": "testTrainMulti_7030_splits",
        "test_list": "testTrainMulti_7030_splits",
        "videos": "",
    },
    "kinetics": {
        "train_list": "train.csv",
        "val_list": "validate.csv",
        "test_list": "validate.csv",
    },
    "ssv1": {
        "train_list": "something-something-v1-train.csv",
        "val_list": "something-something-v1-validation.csv",
        "test_list": "something-something-v1-validation.csv",
        "labels_file": "something-something-v1-labels.csv",
        "videos": "20bn-something-something-v1",
        "frame_template": "{{:05d}}.jpg",
    },
    "ssv2": {
        "train_list": "something-something-v2-train.json",
        "val_list": "something-something-v2-validation.json",
        "test_list": "something-something-v2-validation.json",
        "labels_file": "something-something-v2-labels.json",
        "videos": "20bn-something-something-v2",
    },
    "activitynet": {
        "train_list": "activity_net.v1-3.min.json",
        "val_list": "activity_net.v1-3.min.json",
        "test_list": "activity_net.v1-3.min.json",
    },
}


class DataConfig(_Strict):
    """The dataset (§5.1). While planning, only ``train_list`` is read: the internal
    validation split is carved out of it; ``val_list`` only gives that split its size."""

    root: str = Field(description="dataset root; list paths are relative to it")
    allow_outside_root: bool = Field(
        False,
        description="accept list paths that lead outside root (absolute, or through '..'); "
        "off: such a line is refused with its file:line",
    )
    format: DataFormat = Field(
        "video_list",
        description="annotation format: a list (video_list, frame_list, reference_list, "
        "slowfast_csv) or a dataset's own files (ucf101, hmdb51, kinetics, ssv1, ssv2, "
        "activitynet); the official formats fill in the file names below as distributed",
    )
    split: Annotated[int, Field(ge=1, le=3)] = Field(1, description="ucf101/hmdb51 split 1..3")
    train_list: str = Field("train.txt", description="training annotations, under root")
    val_list: str | None = Field("val.txt", description="original validation list")
    test_list: str | None = Field("test.txt", description="list of the final test")
    labels_file: str | None = Field(
        None,
        description="class names: classInd.txt (ucf101), the labels file (ssv1, ssv2), or for "
        "the list formats a file of one name a line",
    )
    videos: str = Field("", description="folder of the videos (or frame folders), under root")
    video_template: str | None = Field(
        None,
        description="kinetics/ssv2: relative video path from the row, e.g. "
        "'{label}/{youtube_id}_{time_start:06d}_{time_end:06d}.mp4' (kinetics: default "
        "finds each video by name wherever it lies under videos)",
    )
    missing: Literal["skip", "error"] = Field(
        "skip",
        description="official formats: videos listed but absent from the download are "
        "counted, listed once and left out of training (skip) or stop the run (error); "
        "the final test excludes and reports them",
    )
    group_pattern: str | None = Field(
        None,
        description="regex over a video's path whose first group (or match) names its source; "
        "the internal split keeps a source on one side (default: the dataset's own groups)",
    )
    frame_template: str = Field("img_{:05d}.jpg", description="frame file names of frame folders")
    frame_start_index: Annotated[int, Field(ge=0)] = Field(1, description="first frame number")
    modality: Literal["rgb", "flow"] = Field(
        "rgb",
        description="rgb: frames or encoded videos; flow: folders of x/y flow JPEG pairs "
        "(the two-stream networks' flow stream, §5.5; `opplan data prepare --flow tvl1`)",
    )
    flow_template: str = Field(
        "flow_{axis}_{:05d}.jpg",
        description="flow file names: {axis} is x or y, {} the pair number (from "
        "frame_start_index); '{axis}_{:05d}.jpg' reads the dense_flow tool's folders",
    )
    num_classes: PositiveInt | None = Field(
        None, description="default: the class names' count, or max label + 1"
    )
    internal_val_size: PositiveInt | None = Field(
        None, description="size of the internal validation split (default: len(val_list))"
    )
    synthetic: SyntheticConfig | None = None
    frame_size: PositiveInt | None = Field(
        None, description="scale the paper's 224/256/340 geometry to frames of this side"
    )
    flip: bool = Field(True, description="random horizontal flip (off for Something-Something)")
    frame_interval: PositiveInt = 1
    backend: Literal["auto", "pyav", "torchcodec", "decord", "frames"] = "auto"
    num_workers: Annotated[int, Field(ge=0)] = 0
    persistent_workers: bool = Field(
        False, description="keep the training loader's workers for all epochs of a state"
    )
    prefetch_factor: PositiveInt | None = Field(
        None, description="batches each worker loads ahead (default: PyTorch's 2)"
    )
    max_bad_fraction: Annotated[float, Field(ge=0, le=1)] = Field(
        0.01, description="stop when more than this fraction of an epoch's videos is unreadable"
    )
    cache: Literal["none", "memory"] = Field(
        "none", description="memory: decode each video once and keep it (small datasets)"
    )

    @model_validator(mode="before")
    @classmethod
    def _official_files(cls, data: Any) -> Any:
        """An official format names the files of its download; the config only overrides."""
        if not isinstance(data, dict) or data.get("format") not in OFFICIAL_FILES:
            return data
        split = data.get("split", 1)
        defaults = {k: v.format(split=split) for k, v in OFFICIAL_FILES[data["format"]].items()}
        return {**defaults, **data}

    @model_validator(mode="after")
    def _check_pattern(self) -> DataConfig:
        if self.group_pattern is not None:
            try:
                re.compile(self.group_pattern)
            except re.error as err:
                raise ValueError(f"group_pattern: not a regular expression: {err}") from None
        if self.modality == "flow":
            try:
                self.flow_template.format(1, axis="x")
            except (IndexError, KeyError, ValueError) as err:
                raise ValueError(f"flow_template {self.flow_template!r}: {err}") from None
            if "{axis}" not in self.flow_template:
                raise ValueError(
                    f"flow_template {self.flow_template!r} must contain {{axis}} (x or y)"
                )
        if self.format in ("ucf101", "ssv1", "ssv2") and self.labels_file is None:
            raise ValueError(f"format {self.format} needs labels_file")
        return self


class ModelConfig(_Strict):
    name: str = Field("dg_p3d_tiny", description="a name from `opplan models`")
    options: dict[str, Any] = Field(default_factory=dict, description="builder options")
    init: str = Field(
        "random",
        description="random | imagenet:PATH (2D ResNet state dict) | checkpoint:PATH (video)",
    )


class OptimConfig(_Strict):
    """SGD and batch bookkeeping; the trainer's :class:`opplan.engine.OptimSettings` adds
    the micro-batch, accumulation and lr scaling derived from these fields."""

    effective_batch: PositiveInt = 16
    reference_batch: PositiveInt = Field(16, description="batch the graph's lrs are given for")
    base_micro_batch: PositiveInt = 8
    base_clip_length: PositiveInt = 16
    micro_batch: dict[int, PositiveInt] = Field(default_factory=dict)
    momentum: Annotated[float, Field(ge=0, lt=1)] = 0.9
    nesterov: bool = True
    weight_decay: Annotated[float, Field(ge=0)] = 1e-4
    clip_grad_norm: Annotated[float, Field(gt=0)] | None = 40.0
    label_smoothing: Annotated[float, Field(ge=0, lt=1)] = 0.0
    classifier_lr_mult: Annotated[float, Field(gt=0)] = Field(
        1.0, description="learning-rate multiplier of the classifier (e.g. 10 when fine-tuning)"
    )
    freeze_bn_from: PositiveInt | None = Field(
        64,
        description="clip length from which all BatchNorms but the first are frozen (§5.2: "
        "64 and 128 frames); null never freezes",
    )
    recalibrate_bn: StrictBool = Field(
        False,
        description="precise BN at the start of every move from a checkpoint: BatchNorm "
        "statistics recomputed on planning-train clips of the new state before its epoch 0 "
        "(issue 17 item 1, docs/results.md)",
    )
    recalibrate_bn_batches: PositiveInt = Field(
        15, description="micro-batches of the recalibration (at most one pass over the data)"
    )


class VideoTrainerConfig(_Strict):
    """Train a network on videos (``opplan.engine.VideoTrainer``)."""

    kind: Literal["video"] = "video"
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    metric: Literal["top1", "mean_top135"] = Field(
        "top1", description="planning score: top-1, or the reference code's mean of top-1/3/5"
    )
    eval_batch: PositiveInt = 16
    threads: PositiveInt | None = Field(None, description="torch CPU threads (default: all)")
    data: DataConfig
    model: ModelConfig = Field(default_factory=ModelConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    # speed switches (opplan.engine.performance)
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto",
        description="auto: bf16 on a GPU that supports it, else fp32; fp16 uses a GradScaler",
    )
    channels_last: bool = Field(False, description="NDHWC memory format for model and clips")
    compile: bool = Field(
        False, description="torch.compile the training step (cache in RUN/compile_cache)"
    )
    sync_bn: bool = Field(
        False, description="SyncBatchNorm across data-parallel GPUs (frozen BNs stay frozen)"
    )
    cudnn_benchmark: bool = Field(True, description="cudnn autotuning (CUDA; fixed shapes)")

    @model_validator(mode="before")
    @classmethod
    def _amp_is_precision(cls, data: Any) -> Any:
        """``optim.amp`` (before trainer.precision) still loads: true = fp16, false = fp32."""
        optim = data.get("optim") if isinstance(data, dict) else None
        if not isinstance(optim, dict) or "amp" not in optim:
            return data
        amp = optim["amp"]
        data = {**data, "optim": {k: v for k, v in optim.items() if k != "amp"}}
        if amp is None:  # the default of every resolved config of that time
            return data
        if not isinstance(amp, bool):
            raise ValueError(f"optim.amp: expected true or false, got {amp!r}")
        wanted = "fp16" if amp else "fp32"
        if data.get("precision", "auto") not in ("auto", wanted):
            raise ValueError(
                f"optim.amp: {str(amp).lower()} contradicts trainer.precision: "
                f"{data['precision']}; optim.amp is replaced by trainer.precision, remove it"
            )
        warnings.warn(
            f"optim.amp is deprecated: write trainer.precision: {wanted} instead",
            FutureWarning,
            stacklevel=2,
        )
        return {**data, "precision": wanted}
