"""``flowsentinel info``: what a saved model is and how it scored."""

from __future__ import annotations

import argparse
import json

from ._common import add_model_argument, model_dir_of

NAME = "info"
HELP = "what a saved model is and how it scored"


def add_arguments(i: argparse.ArgumentParser) -> None:
    add_model_argument(i)
    i.add_argument("--json", action="store_true", help="print the whole manifest")


def run(args: argparse.Namespace) -> int:
    from ..persistence import read_manifest, verify_model

    manifest = read_manifest(model_dir_of(args))
    verified = verify_model(model_dir_of(args), manifest)
    if args.json:
        print(json.dumps(manifest, indent=2))
        return 0
    test = manifest.get("metrics", {}).get("test", {})
    data = manifest.get("training_data", {})
    print(f"model:      {model_dir_of(args)}")
    network = manifest.get("params", {}).get("network")
    backend = f", {manifest['backend']} backend" if manifest.get("backend") else ""
    print(f"estimator:  {manifest['estimator']}{' ' + network if network else ''} (task {manifest.get('task')}{backend})")
    arch = manifest.get("state", {}).get("architecture")
    if arch:
        print(f"network:    {arch['network']} {json.dumps(arch['kwargs'])}")
    print(f"created:    {manifest['created']} with flowsentinel {manifest['versions'].get('flowsentinel')}, "
          f"torch {manifest['versions'].get('torch')}")
    print(f"schema:     {manifest['schema']}; {len(manifest['input_columns'])} input columns -> {manifest['n_model_inputs']} model inputs")
    print(f"classes:    {', '.join(manifest['classes'])}; alert threshold {manifest['threshold']}")
    print(f"integrity:  {len(verified)} files and the decision fields match the manifest's digests")
    if data:
        synth = " [SYNTHETIC]" if data.get("synthetic") else ""
        if data.get("sources"):
            for i, source in enumerate(data["sources"]):
                classes = ", ".join(f"{k} {v:,}" for k, v in source.get("classes", {}).items())
                print(f"{'trained on:' if i == 0 else '':<11} {source.get('name')} ({source.get('flows', 0):,} flows: {classes})")
        else:
            print(f"trained on: {data.get('path')}{synth} ({data.get('n_flows', 0):,} flows, "
                  f"sha256 {str(data.get('sha256'))[:16]}...)")
    if test:
        far = test.get("false_alarm_rate")
        print(f"test ({manifest['metrics'].get('protocol')} protocol, {test.get('n_flows', 0):,} flows): "
              f"accuracy {test['accuracy']:.4f}, F1 macro {test['f1_macro']:.4f}, F1 weighted {test['f1_weighted']:.4f}, "
              f"false-alarm rate {far if far is not None else float('nan'):.4f}")
    return 0
