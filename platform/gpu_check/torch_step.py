"""PyTorch side of the GPU check; prints one JSON line.

time:    a fine-tuning step of transformers' XLMRobertaForSequenceClassification (XLM-R base
         shape, random init, AdamW, eager, fp32 without TF32: the arithmetic WebGPU does) on the
         same batch as step_bench.ts, on CUDA.
compare: loads the project's exported checkpoint (HF layout) with transformers and compares
         its logits with the ones the project computed at pack time.

    python3 torch_step.py time [--batch 32] [--seq 128] [--steps 5]
    python3 torch_step.py compare CHECKPOINT_DIR LOGITS_JSON
"""

import argparse
import json
import time

import torch
from transformers import XLMRobertaConfig, XLMRobertaForSequenceClassification


def bench_batch(vocab, batch, seq, bos=0, eos=2):
    """The ids step_bench.ts uses (same LCG), so both sides see one batch."""
    x = 12345
    ids = []
    for i in range(batch * seq):
        t = i % seq
        if t == 0:
            ids.append(bos)
        elif t == seq - 1:
            ids.append(eos)
        else:
            x = (x * 1103515245 + 12345) % 2**32
            ids.append(3 + x % (vocab - 3))
    labels = [i % 7 for i in range(batch)]
    return torch.tensor(ids).view(batch, seq), torch.tensor(labels)


def time_step(args):
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = torch.device("cuda")
    cfg = XLMRobertaConfig(
        vocab_size=250002,
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        max_position_embeddings=514,
        type_vocab_size=1,
        layer_norm_eps=1e-5,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        num_labels=7,
    )
    torch.manual_seed(1)
    model = XLMRobertaForSequenceClassification(cfg).to(dev).train()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-5, weight_decay=0.01, foreach=True)
    ids, labels = bench_batch(cfg.vocab_size, args.batch, args.seq)
    ids, labels = ids.to(dev), labels.to(dev)

    def step():
        out = model(input_ids=ids, labels=labels)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return out.loss

    t0 = time.perf_counter()
    loss = step().item()
    first = time.perf_counter() - t0
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    torch.cuda.synchronize()
    ms = (time.perf_counter() - t0) / args.steps * 1000
    print(
        json.dumps(
            {
                "torch": torch.__version__,
                "device": torch.cuda.get_device_name(0),
                "batch": args.batch,
                "seq": args.seq,
                "first_step_s": first,
                "step_ms": ms,
                "loss": loss,
                "peak_memory_gb": torch.cuda.max_memory_allocated() / 1e9,
            }
        )
    )


def compare(args):
    want = json.load(open(args.logits))
    model = XLMRobertaForSequenceClassification.from_pretrained(args.checkpoint).eval()
    ids = torch.tensor(want["ids"]).view(want["B"], want["T"])
    mask = (ids != want["pad"]).long()
    with torch.no_grad():
        got = model(input_ids=ids, attention_mask=mask).logits.flatten().tolist()
    diff = max(abs(a - b) for a, b in zip(got, want["logits"]))
    print(json.dumps({"hf_logits_max_abs_diff": diff, "hf_logits_match": diff <= 1e-4, "n": len(got)}))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("time")
    t.add_argument("--batch", type=int, default=32)
    t.add_argument("--seq", type=int, default=128)
    t.add_argument("--steps", type=int, default=5)
    c = sub.add_parser("compare")
    c.add_argument("checkpoint")
    c.add_argument("logits")
    args = p.parse_args()
    time_step(args) if args.cmd == "time" else compare(args)


if __name__ == "__main__":
    main()
