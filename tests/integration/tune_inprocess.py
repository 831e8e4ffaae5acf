"""In-process ComfyUI checks of Tune-A-Video's tuning with a tiny SD1.5-shaped UNet (random weights).

Run by tests/integration/test_tune.py with ComfyUI on PYTHONPATH; prints "ALL CHECKS
PASSED" at the end. The numbers mean nothing; the code paths, the tensors that change,
the invariants and the refusals are the real ones.
"""

from __future__ import annotations

import sys
import tempfile

import torch
from comfy_inprocess import load_pack, random_model, start_comfy, unet_config

start_comfy()
import comfy.model_management as mm  # noqa: E402
import comfy.model_patcher  # noqa: E402
import comfy.sample  # noqa: E402
import comfy.samplers  # noqa: E402
import comfy.lora  # noqa: E402
import comfy.supported_models  # noqa: E402
import comfy.utils  # noqa: E402
import folder_paths  # noqa: E402

pack = load_pack()
tune_nodes, edit_nodes, invert_nodes = pack("nodes.tune"), pack("nodes.edit"), pack("nodes.invert")
temporal, tuned_weights = pack("nodes.patches.temporal_attention"), pack("nodes.patches.tuned_weights")
tuning_run, keys = pack("nodes.patches.tuning"), pack("nodes.patches.keys")
schedule, inversion = pack("drive_ops.diffusion.schedule"), pack("drive_ops.diffusion.inversion")

torch.set_num_threads(1)
torch.inference_mode().__enter__()  # ComfyUI runs every node in inference mode (its weights are inference tensors)
TUNED_DIR = tempfile.mkdtemp(prefix="drive_tuned_")
folder_paths.folder_names_and_paths[tune_nodes.TUNED_FOLDER] = ([TUNED_DIR], {".safetensors"})

T, h, w = 4, 8, 8
latent = {"samples": torch.randn(T, 4, h, w, generator=torch.Generator().manual_seed(1))}
caption = [[torch.randn(1, 77, 768, generator=torch.Generator().manual_seed(2)), {}]]
empty = [[torch.zeros(1, 77, 768), {}]]
torch.manual_seed(0)
model = random_model()
table = model.get_model_object("model_sampling").sigmas.float()
sigmas = schedule.ddim_sampling_sigmas(table, 2)
ddim = comfy.samplers.KSAMPLER(inversion.sample_ddim)


def sample(m) -> torch.Tensor:
    """Two DDIM steps with CFG from fixed latents: the outputs compared below."""
    return comfy.sample.sample_custom(m, torch.zeros_like(latent["samples"]), 5.0, ddim, sigmas, caption, empty,
                                      latent["samples"], disable_pbar=True, seed=0)


def tune_args(steps: int = 3, trainable: str = "tune_a_video", checkpointing: bool = True, frames: int = 0,
              sparse: bool = True) -> tuple:
    return (model, latent, caption, steps, 1e-3, trainable, 4, frames, checkpointing, "fp32", 7, sparse)


def patcher_state(m) -> tuple:
    return ({k: len(v) for k, v in m.patches.items()}, dict(m.object_patches), repr(m.model_options),
            {k: {kk: len(vv) for kk, vv in v.items()} for k, v in m.wrappers.items()}, dict(m.attachments),
            m.patches_uuid)


def module_state(m) -> tuple:
    """Weights and structure of the shared UNet: what a run must leave as it found it."""
    mods = list(m.model.named_modules())
    return ({k: v.clone() for k, v in m.model.state_dict().items()},
            [(n, type(x).__name__, "forward" in x.__dict__, len(getattr(x, "weight_function", [])),
              len(getattr(x, "bias_function", [])), getattr(x, "comfy_cast_weights", None),
              tuple(p.requires_grad for p in x.parameters(recurse=False))) for n, x in mods])


def assert_unchanged(before_patcher, before_module, what: str, grads: bool = True) -> None:
    """``grads`` False: ComfyUI's own unpatch restores patched weights as parameters without gradients."""
    mm.unload_all_models()
    assert patcher_state(model) == before_patcher, f"the input MODEL's patches changed {what}"
    weights, structure = module_state(model)
    assert weights.keys() == before_module[0].keys(), f"the UNet's tensors changed {what}"
    assert all(torch.equal(weights[k], before_module[0][k]) for k in weights), f"a UNet weight changed {what}"
    if not grads:
        structure, before = [s[:-1] for s in structure], [s[:-1] for s in before_module[1]]
    else:
        before = before_module[1]
    assert structure == before, f"the UNet's modules changed {what}"


base_out = sample(model)
state_patcher, state_module = patcher_state(model), module_state(model)

# 1. fresh temporal layers leave the output exactly as it was (zero-initialised output projection)
fresh = temporal.apply_temporal_layers(model, temporal.new_temporal_layers(model, 0))
assert torch.equal(sample(fresh), base_out), "fresh temporal layers changed the output"
print(f"fresh temporal layers on {len(fresh.object_patches)} transformer blocks: output bit-identical")

# 2. tuning: the input MODEL is untouched; the tuned clone changes only to_q, and adds only attn_temp
out = tune_nodes.TuneAVideo.execute(*tune_args())
tuned, curve, summary, final_loss = out.args
assert curve.shape[0] == 1 and curve.shape[-1] == 3 and "eps-MSE loss" in summary and final_loss > 0
assert_unchanged(state_patcher, state_module, "after tuning")
mm.load_models_gpu([tuned])
tuned_sd = {k: v.clone() for k, v in tuned.model.state_dict().items()}
mm.unload_all_models()
added = sorted(set(tuned_sd) - set(state_module[0]))
changed = sorted(k for k in state_module[0] if not torch.equal(tuned_sd[k], state_module[0][k]))
n_blocks = len(tuned.object_patches)
assert added and all(f".{keys.TEMPORAL_MODULE}." in k for k in added), added[:3]
assert len(added) == n_blocks * 7, len(added)  # norm weight/bias, q, k, v, out weight/bias
assert changed and all(k.endswith(("attn1.to_q.weight", "attn2.to_q.weight")) for k in changed), changed
assert len(changed) == 2 * n_blocks, (len(changed), n_blocks)
norms = [k for k in added if ".norm." in k]
assert all(torch.equal(tuned_sd[k], torch.ones_like(tuned_sd[k]) if k.endswith("weight")
                       else torch.zeros_like(tuned_sd[k])) for k in norms), "the temporal pre-norm was trained"
outs = [k for k in added if ".to_out." in k]
assert outs and all(tuned_sd[k].abs().max() > 0 for k in outs), "a temporal output projection kept its zero init"
assert_unchanged(state_patcher, state_module, "after loading the tuned clone", grads=False)
state_module = module_state(model)
tuned_out = sample(tuned)
assert not torch.equal(tuned_out, base_out)
print(f"tuning: {len(changed)} to_q weights changed, {len(added)} temporal tensors added, nothing else; "
      "input MODEL and shared UNet bit-identical")

# 3. a cancelled run leaves nothing behind: Cancel (ComfyUI's interrupt flag) stops it at the next step


def cancel_after_first(value, total, preview, node_id=None):
    if value >= 1:      # the first report always reaches the hook; the flag is then seen by the next step's check
        mm.interrupt_current_processing(True)


comfy.utils.set_progress_bar_global_hook(cancel_after_first)
try:
    tune_nodes.TuneAVideo.execute(*tune_args(steps=5))
    raise AssertionError("the cancel did not stop the run")
except mm.InterruptProcessingException:
    pass
finally:
    comfy.utils.set_progress_bar_global_hook(None)
    mm.interrupt_current_processing(False)
assert not any(isinstance(m, temporal.TemporalTransformerBlock) for m in model.model.modules())
assert_unchanged(state_patcher, state_module, "after a cancelled run")
print("cancelled after step 1: input MODEL and shared UNet bit-identical")

# 3b. DynamicVRAM (0.16+, NVIDIA) re-parameterises modules without cast hooks when it loads a model: tuning trains on
# a classic clone there, and refuses to train tensors the forward does not read (simulated here: --cpu never loads
# dynamically)


class DynamicPatcher:
    def __init__(self):
        self.cloned_with = None

    def is_dynamic(self):
        return True

    def clone(self, disable_dynamic=False):
        self.cloned_with = disable_dynamic
        return "classic clone"


dynamic = DynamicPatcher()
assert tuning_run.static_model(dynamic) == "classic clone" and dynamic.cloned_with is True
assert tuning_run.static_model(model) is model   # a classic patcher (or a core without DynamicVRAM) trains as it is
real_load = mm.load_models_gpu


def load_like_dynamic_vram(models, *args, **kwargs):
    real_load(models, *args, **kwargs)
    for patcher in models:
        for module in patcher.model.modules():
            if isinstance(module, temporal.TemporalAttention):
                for name, param in list(module.named_parameters(recurse=True)):
                    owner = module.get_submodule(name.rpartition(".")[0]) if "." in name else module
                    setattr(owner, name.rpartition(".")[2], torch.nn.Parameter(param.detach().clone(),
                                                                               requires_grad=False))


mm.load_models_gpu = load_like_dynamic_vram
try:
    tune_nodes.TuneAVideo.execute(*tune_args())
    raise AssertionError("tuning went on with re-parameterised temporal layers")
except RuntimeError as err:
    assert "is not the tensor set being trained" in str(err) and "--disable-dynamic-vram" in str(err), err
finally:
    mm.load_models_gpu = real_load
assert_unchanged(state_patcher, state_module, "after a refused run")
print("DynamicVRAM: a dynamic patcher trains on a classic clone; re-parameterised layers are refused")

# 4. save, then load onto the same base: the same outputs, bit for bit
saved_name = tune_nodes.SaveTunedVideoModel.execute(tuned, "checks/clip").args[0]
reloaded, info = tune_nodes.LoadTunedVideoModel.execute(model, saved_name).args
assert torch.equal(sample(reloaded), tuned_out), "the reloaded weights sample differently"
assert "base model hash" in info
print(f"saved {saved_name}, reloaded: outputs bit-identical")

# 5. a different base model is refused with the reason
other = random_model()  # same layout, other random weights
for candidate, expected in ((other, "its weights differ"), ):
    try:
        tune_nodes.LoadTunedVideoModel.execute(candidate, saved_name)
        raise AssertionError("a different base model was accepted")
    except ValueError as err:
        assert expected in str(err) and "tuned on another base model" in str(err), err
wide = dict(unet_config(False), model_channels=64)
wide_config = comfy.supported_models.SD15(dict(wide, attention_resolutions=None))
wide_config.unet_config = dict(wide)
wide_model = comfy.model_patcher.ModelPatcher(wide_config.get_model({}, "", device=torch.device("cpu")),
                                              load_device=torch.device("cpu"), offload_device=torch.device("cpu"))
try:
    tune_nodes.LoadTunedVideoModel.execute(wide_model, saved_name)
    raise AssertionError("another architecture was accepted")
except ValueError as err:
    assert "architecture differs" in str(err), err
lora_model = model.clone()
lora_model.add_patches({k: ("diff", (torch.full_like(v, 0.05),)) for k, v in state_module[0].items()
                        if k.endswith("ff.net.2.weight") or k.endswith("proj_in.weight")}, 1.0)
try:
    tune_nodes.LoadTunedVideoModel.execute(lora_model, saved_name)
    raise AssertionError("the base with an extra LoRA was accepted")
except ValueError as err:
    assert "its weights differ" in str(err), err
for refused, action in ((tuned, "tuned again"),):
    try:
        tune_nodes.TuneAVideo.execute(refused, *tune_args()[1:])
        raise AssertionError("an already tuned MODEL was tuned again")
    except ValueError as err:
        assert "already carries tuned video weights" in str(err), err
try:
    tune_nodes.SaveTunedVideoModel.execute(model, "checks/none")
    raise AssertionError("a MODEL without tuned weights was saved")
except ValueError as err:
    assert "carries no tuned video weights" in str(err), err
print("refused: other weights, another architecture, an extra LoRA, tuning twice, saving an untuned MODEL")

# 6. the tuned MODEL through Invert Video and the Masked-CFG Sampler; the grid shuffle is refused
inv = invert_nodes.InvertVideo.execute(tuned, empty, latent, 2, "ddim", 0.5, 0.05, 0.2, "after", 1.0, 1, 0).args[0]
edit = edit_nodes.MaskedCFGSampler.execute(tuned, caption, empty, inv, 2, 7.5, -1.0, 1, False, 0, 0, "nearest",
                                           0.5).args[0]
assert torch.isfinite(edit["samples"]).all() and edit["samples"].shape == latent["samples"].shape
for grid, shuffle, per_call in ((2, True, 0), (1, True, 0), (1, False, 2)):
    try:
        edit_nodes.MaskedCFGSampler.execute(tuned, caption, empty, inv, 2, 7.5, -1.0, grid, shuffle, 0, per_call,
                                            "nearest", 0.5)
        raise AssertionError(f"grid {grid}, shuffle {shuffle}, {per_call} per call was accepted")
    except ValueError as err:
        assert "Tune-A-Video temporal layers" in str(err) and "grid_size 1, shuffle off" in str(err), err
print("tuned MODEL inverts and samples with grid 1 / no shuffle; grids, shuffle and chunking are refused")

# 7. LoRA on the same layers: only LoRA factors for to_q in the file; it reloads to the same outputs
lora_tuned = tune_nodes.TuneAVideo.execute(*tune_args(trainable="lora")).args[0]
lora_file = tune_nodes.SaveTunedVideoModel.execute(lora_tuned, "checks/lora").args[0]
lora_tensors = tuned_weights.tuned_of(lora_tuned).tensors
to_q_names = sorted(k for k in lora_tensors if f".{keys.TEMPORAL_MODULE}." not in k)
assert to_q_names and all(k.endswith((".lora_up.weight", ".lora_down.weight", ".alpha")) for k in to_q_names)
assert len(to_q_names) == 3 * 2 * n_blocks
lora_reloaded = tune_nodes.LoadTunedVideoModel.execute(model, lora_file).args[0]
assert torch.equal(sample(lora_reloaded), sample(lora_tuned))
print("LoRA trainable set: LoRA factors for every to_q, reload bit-identical")

# 8. gradient checkpointing recomputes exactly: the same loss curve; frames_per_step trains on runs of frames
plain = tuning_run.tune(model, latent, caption, pack("drive_ops.diffusion.tuning").TuneRecipe(
    steps=3, learning_rate=1e-3, training_dtype="fp32", seed=7, gradient_checkpointing=False))
assert plain.metadata["losses"] == tuned_weights.tuned_of(tuned).metadata["losses"], \
    (plain.metadata["losses"], tuned_weights.tuned_of(tuned).metadata["losses"])
windowed = tune_nodes.TuneAVideo.execute(*tune_args(frames=2)).args[2]
assert "(2 per step)" in windowed
print("gradient checkpointing: identical losses", plain.metadata["losses"])

# 9. the to_q part is an ordinary ComfyUI LoRA file: core's parser, with its generic key map (the part of
# model_lora_keys_unet the tiny config allows), reads it and skips the temporal layers
generic = {k[:-len(".weight")]: k for k in state_module[0] if k.endswith(".weight")}
core_patches = comfy.lora.load_lora(tuned_weights.tuned_of(tuned).tensors, generic, log_missing=False)
assert sorted(core_patches) == changed
print("core LoRA parser reads the to_q changes of the file")

assert_unchanged(state_patcher, state_module, "at the end")
print("ALL CHECKS PASSED")
sys.stdout.flush()
