"""``passk audit export|apply|serve|judge``: the guesswork audit of a run (``passkcore.audit``)."""

from __future__ import annotations

import argparse
from typing import Any

from passkcore.cli.common import NAMES, add_list, add_verbosity

DEFAULT_PORT = 8765


def cmd_export(args: argparse.Namespace) -> int:
    from passkcore.audit import export_audit

    rows = export_audit(args.run, args.out, hardest=args.hardest, per_problem=args.per_problem, models=args.model,
                        seed=args.seed)
    print(f"{rows} correct samples to audit written to {args.out}")
    return 0


def cmd_apply(args: argparse.Namespace) -> int:
    from passkcore.audit import apply_audit

    labelled, stored = apply_audit(args.run, args.file, auditor=args.auditor)
    print(f"{labelled} labelled rows in {args.file}: {stored} stored under auditor {args.auditor!r}, "
          f"{labelled - stored} already stored")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from passkcore.audit.serve import serve

    serve(args.run, host=args.host, port=args.port, auditor=args.auditor, hardest=args.hardest,
          per_problem=args.per_problem, models=args.model, seed=args.seed)
    return 0


def cmd_judge(args: argparse.Namespace) -> int:
    from passkcore.audit.judge import judge_run

    result = judge_run(args.run, model=args.model, template=args.template, hardest=args.hardest,
                       per_problem=args.per_problem, models=args.sample_model, seed=args.seed, dtype=args.dtype,
                       max_tokens=args.max_tokens, max_model_len=args.max_model_len)
    counted = ", ".join(f"{label} {n}" for label, n in result["labels"].items())
    print(f"{result['judged']} samples judged by {result['auditor']}: {counted}; {result['stored']} stored")
    agree = result.get("agreement")
    if agree and agree["both"]:
        kappa = "undefined" if agree["kappa"] is None else f"{agree['kappa']:.3f}"
        print(f"agreement with people's labels: Cohen's kappa {kappa} over {agree['both']} samples both labelled "
              f"({agree['agree']} agree)")
    return 0


def add_queue(p: argparse.ArgumentParser, model_flag: str = "--model") -> None:
    from passkcore.audit.queue import DEFAULT_HARDEST, DEFAULT_PER_PROBLEM

    p.add_argument("--hardest", type=int, default=DEFAULT_HARDEST, metavar="N",
                   help=f"each model's N hardest solved problems, lowest c/n first (default {DEFAULT_HARDEST})")
    p.add_argument("--per-problem", type=int, default=DEFAULT_PER_PROBLEM, metavar="M",
                   help=f"up to M correct samples per problem, a seeded choice (default {DEFAULT_PER_PROBLEM})")
    add_list(p, model_flag, kind=NAMES, metavar="LABEL", dest="model" if model_flag == "--model" else "sample_model",
             help="the model labels whose samples are audited (default: every model of the run)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the per-problem choice (default 0)")


def add_audit_command(sub: Any) -> None:
    from passkcore.audit.store import DEFAULT_AUDITOR
    from passkcore.sampling import DTYPES

    audit = sub.add_parser("audit", help="label the hardest problems' correct samples (valid, guess, unsure)")
    verbs = audit.add_subparsers(dest="verb", required=True, metavar="VERB")

    p = verbs.add_parser("export", help="the correct samples of each model's hardest solved problems, as CSV or JSONL")
    p.add_argument("run", help="run directory")
    p.add_argument("--out", required=True, metavar="FILE", help="the audit file: FILE.csv or FILE.jsonl")
    add_queue(p)
    p.set_defaults(func=cmd_export)

    p = verbs.add_parser("apply", help="store a labelled audit file's labels in the run (all or nothing)")
    p.add_argument("run", help="run directory")
    p.add_argument("file", help="a labelled audit file (.csv or .jsonl), as export wrote it")
    p.add_argument("--auditor", default=DEFAULT_AUDITOR, metavar="NAME", help=f"whose labels these are (default {DEFAULT_AUDITOR})")
    p.set_defaults(func=cmd_apply)

    p = verbs.add_parser("serve", help="a local review page: v / g / u label the sample, saved as typed")
    p.add_argument("run", help="run directory")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, metavar="P", help=f"port (default {DEFAULT_PORT}; 0: any free port)")
    p.add_argument("--host", default="127.0.0.1", metavar="H", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--auditor", default=DEFAULT_AUDITOR, metavar="NAME", help=f"whose labels these are (default {DEFAULT_AUDITOR})")
    add_queue(p)
    p.set_defaults(func=cmd_serve)

    p = verbs.add_parser("judge", help="an LLM judge's labels of the queue, stored under judge:<model>")
    p.add_argument("run", help="run directory")
    p.add_argument("--model", required=True, metavar="M", help="the judge: smollm2-135m (embedded) or a local HF directory")
    p.add_argument("--template", metavar="FILE", help="a Jinja FILE for the judge's prompt over problem, answer, response, "
                                      "problem_id, model (default: passkcore's, see docs/audit.md)")
    p.add_argument("--max-tokens", type=int, default=256, metavar="T", help="the judge's answer length (default 256)")
    p.add_argument("--dtype", choices=DTYPES, default="auto", help="the judge engine's dtype (default auto)")
    p.add_argument("--max-model-len", type=int, default=4096, metavar="L",
                   help="the judge's context in tokens; a longer prompt is labelled unsure unasked (default 4096)")
    add_queue(p, "--sample-model")
    add_verbosity(p, cmd_judge)
