"""The FastSAM2 switches shared by the ``model_fastsam2_*`` configs (size-independent parts).

``read_base()`` this file next to a RapSAM config and apply them, as the model configs do; the
size-dependent parts (geometry / fusion widths, low-rank attention rank, refiner width) stay in
each model config.
"""
from seg.models.heads import MemoryCrossAttention, MultimaskDecoder, PromptMaskRefiner
from seg.models.losses import DPSRLoss
from seg.models.utils import PromptFusion, RegionalFeatures, StreamingMemory, TaskRouter

# TaskRouter with its default rules (interactive: prompt queries, 2 stages; vos: memory on;
# panoptic: object queries, every stage, no pruning)
task_router = dict(type=TaskRouter)

# per object: the prompted frame(s) + key frames (confident, >= 5 frames apart), the last 4 frames;
# updates less similar than 0.2 to the object's text prompt are rejected (drift guard)
memory = dict(type=StreamingMemory, long_capacity=4, short_capacity=4, key_frame_interval=5,
              key_frame_score_thr=0.8, text_sim_thr=0.2)
memory_reader = dict(type=MemoryCrossAttention)

# dense correction of the prompted masks from the clicks and the previous mask (identity at init)
prompt_refiner = dict(type=PromptMaskRefiner, click_sigma=1.0)

# DPSR on video batches: lambda1 (Dice, previous mask -> current) and lambda2 (MSE, embeddings)
loss_dpsr = dict(type=DPSRLoss, lambda_mask=1.0, lambda_feat=1.0)

prompt_fusion = dict(type=PromptFusion, num_layers=1)

# SAM-style multimask output: 3 candidate masks per prompt, scored by the IoU head, trained with
# the ambiguity rule (best candidate of a single click)
multimask_decoder = dict(type=MultimaskDecoder, num_masks=3)

# ---- the full-size settings (R50 / ConvNeXt-L, 256-d decoder); the tiny config overrides widths
from seg.models.necks import MaskStateRefiner  # noqa: E402
from seg.models.utils import LowRankMHSA  # noqa: E402

# CLIP tokens of the stride-16 level query the geometry tokens; with the pruner on, half of them
# (the top-scoring ones, the entropy scorer attending to at most 256 keys) are updated, scores
# reused for 4 video frames. The TaskRouter's default rules leave it off in every mode (it saves
# ~2 % of the encoder and moved image masks by 11 % IoU: docs/benchmarks/NOTES.md section 15);
# a rule with use_pruner=True turns it on.
# Low-rank (Nystrom) attention goes where the key set is long: thousands of geometry tokens per
# frame (2304 at 1024x576). Over the decoder's <= 100 queries exact attention is cheaper than
# its approximation, so the head keeps nn.MultiheadAttention.
token_fusion = dict(embed_dim=256, num_heads=8, direction='sem_queries_geom', level=2,
                    attention=dict(type=LowRankMHSA, rank=64, method='nystrom'))
token_pruner = dict(keep_ratio=0.5, score='entropy', refresh_period=4, num_score_keys=256)
# the visual tower in the channels-last layout (oneDNN's / tensor cores' native one): same values,
# the RN50 trunk ~0.8x the time on CPU (docs/benchmarks/NOTES.md section 12)
backbone_switches = dict(channels_last=True)
# the real-time pixel decoder: depthwise-separable convs, per-level 1x1 fusion (see YOSONeck)
neck_switches = dict(conv_type='separable', fuse='sum1x1')
head_switches = dict(prompt_aggregator=dict(prompt_fusion, num_heads=8),
                     memory_reader=memory_reader, loss_dpsr=loss_dpsr,
                     multimask_decoder=multimask_decoder,
                     prompt_refiner=dict(prompt_refiner, hidden_channels=16, num_layers=3))
# tracked frames: the encoder runs on a crop around the objects (their box + a quarter of its size
# + 32 px of context each side), the rest of the map is at most 8 frames old. Measured on held-out
# DAVIS with the trained tiny VOS model at 512 px: J&F 0.217 vs 0.215 computed in full, 11 % fewer
# encoder pixels (a tenth of the box: 42 % fewer, but J&F 0.184); docs/benchmarks/NOTES.md section 5
regional_features = dict(type=RegionalFeatures, margin=0.25, halo=32, refresh_period=8, max_area=0.6)
model_switches = dict(task_router=task_router, mode='auto', memory=memory,
                      regional_features=regional_features,
                      mask_refiner=dict(type=MaskStateRefiner, feat_channels=256, hidden_channels=16,
                                        num_layers=3))
