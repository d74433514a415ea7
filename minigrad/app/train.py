"""``minigrad train``: train on scikit-learn's digits, save a checkpoint, load it into a fresh
model and check that the reloaded model scores the same. The training itself is
``minigrad.training``'s."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

from .. import nn, optim
from ..data import Dataset, load_digits
from ..serialization import load, save
from ..training import (NORMS, OPTIMIZERS, EpochRecord, build_model, dtype_of, eval_loader,
                        evaluate, fit, make_optimizer)

__all__ = ["TrainingRun", "train_digits", "add_arguments", "run"]


def add_arguments(parser) -> None:
    parser.add_argument("--model", choices=("mlp", "cnn"), default="mlp",
                        help="an MLP on the 64 pixels, or a small CNN on the 8x8 images")
    parser.add_argument("--norm", choices=NORMS, default="batch",
                        help="normalisation after each hidden layer (default: batch)")
    parser.add_argument("--fused", action="store_true",
                        help="BatchNorm as one fused op instead of the composed graph")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--optimizer", choices=tuple(OPTIMIZERS), default="adam")
    parser.add_argument("--lr", type=float, default=None,
                        help="initial learning rate, decayed along a cosine (default: 0.003 for "
                             "adam, 0.1 for sgd)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0,
                        help="seeds the weights, the train/test split and the shuffling")
    parser.add_argument("--out", default="out", help="directory for the checkpoint")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


@dataclass
class TrainingRun:
    """What ``train_digits`` did: the data, the trained model, one record per epoch, the
    training time, and the checkpoint with how the model reloaded from it scores."""
    data: Dataset
    model: nn.Module
    history: list
    seconds: float
    checkpoint: str
    reloaded_loss: float
    reloaded_accuracy: float

    @property
    def reload_matches(self) -> bool:
        """Whether the reloaded model reproduces the trained one's test loss."""
        final = self.history[-1].test_loss
        return abs(self.reloaded_loss - final) <= 1e-5 * max(1.0, final)


def train_digits(model: str = "mlp", *, norm: str = "batch", fused: bool = False,
                 epochs: int = 10, optimizer: str = "adam", lr: float | None = None,
                 batch_size: int = 64, seed: int = 0, out="out", progress: bool = True,
                 log=None) -> TrainingRun:
    """Train ``build_model(model, norm=..., fused=...)`` on the digits with a cosine learning
    rate schedule, save a checkpoint in ``out``, load it into a fresh model and evaluate that."""
    data = load_digits(seed=seed, images=model == "cnn")
    settings = dict(input_shape=data.input_shape, n_classes=data.n_classes, norm=norm,
                    fused=fused)
    nn.manual_seed(seed)
    network = build_model(model, **settings)
    chosen = make_optimizer(optimizer, network.parameters(), lr)
    scheduler = optim.CosineAnnealingLR(chosen, T_max=epochs)
    started = time.perf_counter()
    history = fit(network, data, chosen, epochs=epochs, batch_size=batch_size, seed=seed,
                  scheduler=scheduler, progress=progress, log=log)
    seconds = time.perf_counter() - started

    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, f"digits_{model}_{norm}.npz")
    save(network.state_dict(), path)
    reloaded = build_model(model, **settings)
    reloaded.load_state_dict(load(path))
    reloaded_loss, reloaded_accuracy = evaluate(reloaded, eval_loader(data, dtype_of(reloaded)))
    return TrainingRun(data, network, history, seconds, path, reloaded_loss, reloaded_accuracy)


def run(args) -> int:
    from tqdm.auto import tqdm

    if args.epochs < 1 or args.batch_size < 2 or (args.lr is not None and args.lr <= 0):
        raise SystemExit("minigrad train: --epochs must be >= 1, --batch-size >= 2 and --lr > 0")
    print(EpochRecord.HEADER, flush=True)
    result = train_digits(args.model, norm=args.norm, fused=args.fused, epochs=args.epochs,
                          optimizer=args.optimizer, lr=args.lr, batch_size=args.batch_size,
                          seed=args.seed, out=args.out, progress=not args.no_progress,
                          log=lambda record: tqdm.write(record.row()))
    final = result.history[-1]
    print(f"\nmodel: {result.model!r}\ndata: {result.data!r}")
    print(f"trained {args.epochs} epochs in {result.seconds:.1f} s: test accuracy "
          f"{final.test_accuracy:.2%} (loss {final.test_loss:.4f})")
    print(f"checkpoint {result.checkpoint}: reloaded into a fresh model, test accuracy "
          f"{result.reloaded_accuracy:.2%} (loss {result.reloaded_loss:.4f})")
    if not result.reload_matches:
        print("error: the reloaded model does not reproduce the trained one")
        return 1
    return 0
