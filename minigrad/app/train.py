"""``minigrad train``: train on scikit-learn's digits, save a checkpoint, load it into a fresh
model and check that the reloaded model scores the same. The training itself is
``minigrad.training``'s."""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass

from .. import nn, optim
from ..core import checks
from ..data import Dataset, load_digits
from ..serialization import load, save
from ..training import (MODELS, NORMS, OPTIMIZERS, EpochRecord, build_model, dtype_of,
                        eval_loader, evaluate, fit, make_optimizer, takes_images)
from . import arguments

__all__ = ["TrainingRun", "train_digits", "add_arguments", "run"]


def add_arguments(parser) -> None:
    parser.add_argument("--model", choices=MODELS, default="mlp",
                        help="an MLP on the 64 pixels, or a small CNN on the 8x8 images "
                             "(cnn-pool: with max and average pooling)")
    parser.add_argument("--norm", choices=NORMS, default="batch",
                        help="normalisation after each hidden layer (default: batch)")
    parser.add_argument("--fused", action="store_true",
                        help="BatchNorm as one fused op instead of the composed graph")
    parser.add_argument("--epochs", type=arguments.positive_int, default=10)
    parser.add_argument("--optimizer", choices=tuple(OPTIMIZERS), default="adam")
    parser.add_argument("--lr", type=arguments.finite_positive_float, default=None,
                        help="initial learning rate, decayed along a cosine (default: 0.003 for "
                             "adam, 0.1 for sgd)")
    parser.add_argument("--batch-size", type=arguments.positive_int, default=64,
                        help="at most the training set's size; at least 2 with BatchNorm")
    parser.add_argument("--seed", type=arguments.non_negative_int, default=0,
                        help="seeds the weights, the train/test split and the shuffling")
    parser.add_argument("--out", type=arguments.writable_dir, default="out",
                        help="directory for the checkpoint (created if needed)")
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
    rate schedule, save a checkpoint in ``out``, load it into a fresh model and evaluate that.

    Every argument is checked, and ``out`` created, before training starts, so a bad one
    never throws a finished run away. A loss that becomes NaN or inf stops the run with
    ``minigrad.training.LossNotFiniteError``."""
    owner = "train_digits"
    checks.one_of(owner, "model", model, MODELS)
    checks.one_of(owner, "norm", norm, NORMS)
    checks.one_of(owner, "optimizer", optimizer, tuple(OPTIMIZERS))
    epochs = checks.positive_int(owner, "epochs", epochs)
    lr = None if lr is None else checks.positive_real(owner, "lr", lr)
    batch_size = checks.positive_int(owner, "batch_size", batch_size)
    seed = checks.non_negative_int(owner, "seed", seed)
    data = load_digits(seed=seed, images=takes_images(model))
    problem = batch_size_problem(batch_size, len(data.x_train), model, norm)
    if problem:
        checks.bad_argument(owner, "batch_size", problem, batch_size)
    os.makedirs(out, exist_ok=True)

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

    path = os.path.join(out, f"digits_{model}_{norm}.npz")
    save(network.state_dict(), path)
    reloaded = build_model(model, **settings)
    reloaded.load_state_dict(load(path))
    reloaded_loss, reloaded_accuracy = evaluate(reloaded, eval_loader(data, dtype_of(reloaded)))
    return TrainingRun(data, network, history, seconds, path, reloaded_loss, reloaded_accuracy)


def batch_size_problem(batch_size: int, n_train: int, model: str, norm: str) -> str | None:
    """What ``batch_size`` must be if it cannot train ``model`` with ``norm`` on ``n_train``
    samples, else None. Short last batches are dropped, so a batch larger than the training
    set leaves none; BatchNorm after a Linear layer cannot train on one sample."""
    if batch_size > n_train:
        return f"at most the {n_train} training samples"
    if batch_size < 2 and model == "mlp" and norm == "batch":
        return "at least 2 when norm is 'batch' (BatchNorm cannot train on one sample)"
    return None


def training_set_size(model: str, seed: int) -> int:
    """How many samples ``train_digits`` trains on."""
    return len(load_digits(seed=seed, images=takes_images(model)).x_train)


def run(args) -> int:
    from tqdm.auto import tqdm

    # Checks that need more than one argument, then the output directory: all before training.
    problem = batch_size_problem(args.batch_size, training_set_size(args.model, args.seed),
                                 args.model, args.norm)
    if problem:
        raise arguments.usage_error("--batch-size", problem, args.batch_size)
    arguments.make_dir(args.out, "--out")
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
        print("minigrad train: error: the reloaded model does not reproduce the trained one",
              file=sys.stderr)
        return 1
    return 0
