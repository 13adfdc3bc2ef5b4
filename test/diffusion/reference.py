# Reference numbers for test/diffusion/*.test.ts, computed once with numpy in float64 (python3 reference.py).
# Independent of the TypeScript code: diffusers' DDIMScheduler formulas written out by hand.
import numpy as np
np.set_printoptions(precision=17)

N = 1000
betas = np.linspace(0.00085 ** 0.5, 0.012 ** 0.5, N) ** 2  # scaled_linear
ac = np.cumprod(1 - betas)
print('sd alphas_cumprod[0,1,500,981,999]', [repr(float(ac[i])) for i in (0, 1, 500, 981, 999)])

lin = np.linspace(0.0001, 0.02, N)
print('linear alphas_cumprod[999]', repr(float(np.cumprod(1 - lin)[-1])))

def alpha_bar(t): return np.cos((t + 0.008) / 1.008 * np.pi / 2) ** 2
cos_b = np.array([min(1 - alpha_bar((i + 1) / N) / alpha_bar(i / N), 0.999) for i in range(N)])
print('cosine betas[0,500,999]', [repr(float(cos_b[i])) for i in (0, 500, 999)])

ts_leading = (np.arange(0, 50) * (N // 50)).round()[::-1].astype(np.int64) + 1
print('leading50', ts_leading.tolist())
print('sd alphas at leading50[:3], [-1]', [repr(float(ac[t])) for t in list(ts_leading[:3]) + [ts_leading[-1]]])
print('linspace7', np.linspace(0, N - 1, 7).round()[::-1].astype(np.int64).tolist())
print('linspace3', np.linspace(0, N - 1, 3).round()[::-1].astype(np.int64).tolist())
print('trailing7', (np.round(np.arange(N, 0, -N / 7)) - 1).astype(np.int64).tolist())

# The toy model: an arbitrary smooth function of x and t (not a trained denoiser; it only has to be analytic).
def eps_model(x, t):
    return np.sin(x) * (1 - t / N) + 0.5 * x * np.sqrt(1 - ac[t])

xT = np.array([-2.0, -1.3, -0.5, 0.0, 0.2, 0.7, 1.1, 2.5])
final = ac[0]  # SD: set_alpha_to_one = False

def ddim(x, ts):
    for i, t in enumerate(ts):
        prev = ts[i + 1] if i + 1 < len(ts) else -1
        a, ap = ac[t], (ac[prev] if prev >= 0 else final)
        e = eps_model(x, t)
        x0 = (x - np.sqrt(1 - a) * e) / np.sqrt(a)
        x = np.sqrt(ap) * x0 + np.sqrt(1 - ap) * e
    return x
print('ddim50 leading', [repr(float(v)) for v in ddim(xT.copy(), list(ts_leading))])
ts_tr10 = (np.round(np.arange(N, 0, -N / 10)) - 1).astype(np.int64).tolist()
print('ddim10 trailing', [repr(float(v)) for v in ddim(xT.copy(), ts_tr10)])

def euler(x, ts):
    sig = [np.sqrt((1 - ac[t]) / ac[t]) for t in ts] + [0.0]
    x = x * np.sqrt(1 + sig[0] ** 2)
    for i, t in enumerate(ts):
        e = eps_model(x / np.sqrt(1 + sig[i] ** 2), t)
        x = x + (sig[i + 1] - sig[i]) * e
    return x
print('euler50 leading', [repr(float(v)) for v in euler(xT.copy(), list(ts_leading))])

# Zero terminal SNR (Lin et al. 2023, Algorithm 1, as diffusers' rescale_zero_terminal_snr), on the SD schedule.
def rescale_zero_snr(betas):
    s = np.sqrt(np.cumprod(1 - betas))
    s0, sT = s[0], s[-1]
    s = (s - sT) * s0 / (s0 - sT)
    ab = s ** 2
    alphas = np.concatenate([ab[:1], ab[1:] / ab[:-1]])
    return 1 - alphas
zac = np.cumprod(1 - rescale_zero_snr(betas))
print('zero-snr alphas_cumprod[0,1,500,998,999]', [repr(float(zac[i])) for i in (0, 1, 500, 998, 999)])

# v-prediction DDIM on it, 10 trailing steps (the first at t = 999, alpha-bar 0), diffusers' DDIMScheduler.step
# for prediction_type v_prediction; the toy "v model" is the eps toy above on the rescaled schedule.
def v_model(x, t):
    return np.sin(x) * (1 - t / N) + 0.5 * x * np.sqrt(1 - zac[t])
def ddim_v(x, ts):
    for i, t in enumerate(ts):
        prev = ts[i + 1] if i + 1 < len(ts) else -1
        a, ap = zac[t], (zac[prev] if prev >= 0 else zac[0])
        v = v_model(x, t)
        x0 = np.sqrt(a) * x - np.sqrt(1 - a) * v
        e = np.sqrt(a) * v + np.sqrt(1 - a) * x
        x = np.sqrt(ap) * x0 + np.sqrt(1 - ap) * e
    return x
print('ddim10 trailing v zero-snr', [repr(float(v)) for v in ddim_v(xT.copy(), ts_tr10)])

# Min-SNR-5 weights (Hang et al. 2023, as diffusers' train_text_to_image.py): SNR = a / (1 - a)
snr = ac / (1 - ac)
print('min-snr-5 eps weights at [0,500,999]', [repr(float(min(snr[t], 5) / snr[t])) for t in (0, 500, 999)])
print('min-snr-5 v weights at [0,500,999]', [repr(float(min(snr[t], 5) / (snr[t] + 1))) for t in (0, 500, 999)])
