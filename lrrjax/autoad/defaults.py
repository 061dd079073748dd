"""Auto-AD's defaults, those of the official code (``AD_main_loop.py``,
``models/skip.py``); see BUILD_NOTES.md, "Auto-AD baseline"."""

DESCRIPTION = (
    "Auto-AD (Wang et al., TGRS 2021): deep-image-prior skip autoencoder fitted "
    "to the scene from random noise with residual-based pixel weights; score = "
    "per-pixel l2 reconstruction error.")

DEFAULT_ITERS = 1001
DEFAULT_LR = 0.01
DEFAULT_CHANNELS = 128
DEFAULT_SCALES = 5
DEFAULT_INPUT_SCALE = 0.1      # get_noise(..., 'u', var=1/10): U[0,1) * 0.1
DEFAULT_REG_NOISE_STD = 0.1    # reg_noise_std = 0.1
DEFAULT_PLATEAU = 1.5e-5       # thres = 0.000015
DEFAULT_PLATEAU_WINDOW = 50    # loss_np has 50 slots, checked when j % 50 == 0
DEFAULT_REFRESH_EVERY = 100    # weighting block runs when j % 100 == 0, j != 0

LEAKY_SLOPE = 0.2              # DIP act('LeakyReLU') = nn.LeakyReLU(0.2)
BN_EPS = 1e-5                  # torch.nn.BatchNorm2d default
