"""Interleaved wall-clock race of codec candidates on the 2-core CPU.

Each round steps the candidate with the least accumulated training wall time, so load spikes from
other processes hit all candidates alike. Eval time is not counted in the budget.
usage: python scripts/race_codec_candidates.py BUDGET_S OUTDIR name=config[;override,...] ...
e.g.   python scripts/race_codec_candidates.py 450 runs/race a=seanet-seanet b=seanet-vocos c=stft-vocos
Trains on the train split of ../shared/data/speech_real (MANIFEST=... overrides); never on test.
"""
import json, os, sys, time
import torch
torch.set_num_threads(2)
from audiolatent.data import AudioDataset
from audiolatent.data.datasets import collate_audio
from audiolatent.tokenizers.codec import build_codec
from audiolatent.core.config import PACKAGED_CONFIGS
from audiolatent.train.losses import MultiResolutionMelLoss
from audiolatent.bench.distortion import mel_distance, pesq_wb, stoi

budget = float(sys.argv[1]); outdir = sys.argv[2]; specs = sys.argv[3:]
os.makedirs(outdir, exist_ok=True)
MANIFEST = os.environ.get("MANIFEST", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data", "speech_real", "manifest.jsonl"))
BATCH, CROP, LR, COMMIT_W = int(os.environ.get("BATCH", 12)), float(os.environ.get("CROP", 1.0)), float(os.environ.get("LR", 1.5e-3)), 1.0
torch.manual_seed(0)
train = AudioDataset(MANIFEST, split="train", sample_rate=16000, crop_seconds=CROP, seed=0, cache=True)
loader = torch.utils.data.DataLoader(train, batch_size=BATCH, shuffle=True, collate_fn=collate_audio, drop_last=True)
t0 = time.time()
batches = []  # one pass decodes every file into the cache (not timed); later epochs draw new crops
for b in loader:
    pass
print(f"cache warm in {time.time()-t0:.1f}s, {len(train)} train files", flush=True)

test = AudioDataset(MANIFEST, split="test", sample_rate=16000, min_seconds=1.5, max_files=10, cache=True)
held = [test[i]["audio"][:, :16000 * 4] for i in range(len(test))]

def evaluate(codec, full=False):
    codec.eval()
    res = {"mel": []}
    if full:
        res.update(pesq=[], stoi=[])
    with torch.no_grad():
        for x in held:
            y = codec(x[None])["audio"]
            res["mel"].append(float(mel_distance(x[None], y, 16000)[0]))
            if full:
                res["pesq"].append(float(pesq_wb(x[None], y, 16000)[0]))
                res["stoi"].append(float(stoi(x[None], y, 16000)[0]))
    codec.train()
    return {k: sum(v) / len(v) for k, v in res.items()}

loss_fn = MultiResolutionMelLoss(16000, (64, 128, 256, 512, 1024, 2048), (10, 20, 40, 80, 160, 320), hop_fraction=0.5)
cands = []
for spec in specs:
    name, rest = spec.split("=", 1)
    cfg, *ov = rest.split(";")
    ov = [o for o in ",".join(ov).split(",") if o]
    torch.manual_seed(0)
    codec = build_codec(PACKAGED_CONFIGS / "codecs" / "default-candidates" / f"{cfg}.yaml", ov)
    opt = torch.optim.AdamW(codec.parameters(), lr=LR, betas=(0.8, 0.99), weight_decay=1e-2)
    cands.append(dict(name=name, codec=codec, opt=opt, spent=0.0, cpu=0.0, steps=0, it=None, epoch=0, curve=[], next_eval=budget / 2,
                      params=codec.num_parameters(), loss=[]))
    print(name, cfg, ov, codec.num_parameters(), flush=True)

def next_batch(c):
    while True:
        if c["it"] is None:
            train.set_epoch(c["epoch"]); c["epoch"] += 1; c["it"] = iter(loader)
        try:
            return next(c["it"])["audio"]
        except StopIteration:
            c["it"] = None

load_start = os.getloadavg()
wall0 = time.time()
while any(c["spent"] < budget for c in cands):
    c = min((c for c in cands if c["spent"] < budget), key=lambda c: c["spent"])
    x = next_batch(c)
    t, tc = time.perf_counter(), time.process_time()
    warm = min(1.0, (c["steps"] + 1) / 50)
    for g in c["opt"].param_groups:
        g["lr"] = LR * warm
    out = c["codec"](x)
    rec = loss_fn(out["audio"], x)
    loss = rec + COMMIT_W * out["losses"]["commitment"] + out["losses"].get("codebook", 0.0)
    c["opt"].zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(c["codec"].parameters(), 1.0)
    c["opt"].step()
    c["spent"] += time.perf_counter() - t; c["cpu"] += time.process_time() - tc; c["steps"] += 1
    c["loss"].append(float(rec.detach()))
    if c["steps"] % 10 == 0:
        print(f"{c['name']:>14} step {c['steps']:5d} t {c['spent']:6.0f}s mel-loss {sum(c['loss'][-10:])/10:.3f} load {os.getloadavg()[0]:.1f}", flush=True)
    if c["spent"] >= c["next_eval"]:
        full = c["spent"] >= budget
        r = evaluate(c["codec"], full)
        c["curve"].append(dict(t=round(c["spent"]), steps=c["steps"], **{k: round(v, 4) for k, v in r.items()}))
        print("EVAL", c["name"], c["curve"][-1], flush=True)
        c["next_eval"] += budget / 2
rows = []
for c in cands:
    c["codec"].save(os.path.join(outdir, c["name"]))
    rows.append(dict(name=c["name"], params=c["params"], steps=c["steps"], s_per_step=round(c["spent"] / c["steps"], 3),
                     cpu_s_per_step=round(c["cpu"] / c["steps"], 3), curve=c["curve"]))
summary = dict(budget_s=budget, batch=BATCH, crop=CROP, lr=LR, load_start=load_start, load_end=os.getloadavg(),
               total_wall=round(time.time() - wall0), rows=rows)
json.dump(summary, open(os.path.join(outdir, "summary.json"), "w"), indent=1)
print(json.dumps(summary, indent=1))
