"""The truth the calibration benchmarks simulate from: the released testbed's fits,
the paper's sizes and targets, and the noise of its measurements (shared by
calibration.py and calibration_curves.py)."""
import numpy as np

# The released testbed's fits (configs/testbed.py, c4_val loss, 17-task error).
TRUTH = {"rpj": (np.array([1.8366, 212.236, 366.687, 0.1364]),
                 np.array([0.8570, 2.2065, 0.7146])),
         "c4_original": (np.array([1.5083, 141.277, 189.516, 0.1212]),
                         np.array([0.8497, 2.0789, 0.7561])),
         "rw_original": (np.array([1.7345, 157.116, 246.207, 0.1272]),
                         np.array([0.8653, 2.2148, 0.7070]))}
SIZES = np.array([10_569_312, 78_914_048, 153_677_376, 411_616_256])
N_1B, N_7B = 1_439_795_200, 6_889_410_560
LOSS_SIGMA, ERR_SIGMA = 0.02, 0.01  # residual scales of the testbed fits
EVAL_SIGMA = 0.0057  # the testbed's recorded c4_val 95% loss interval / 1.96
TARGETS = {"N": np.array([N_1B, N_7B], float), "M": np.array([640.0, 20.0])}
TARGET_NAMES = ("loss 1.4B M640", "loss 6.9B M20", "err 1.4B M640", "err 6.9B M20", "eta")
