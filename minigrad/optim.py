"""Optimizers (SGD, Adam) and learning-rate schedules (StepLR, CosineAnnealingLR).

The update rules are PyTorch's, written in the same order of operations, so a minigrad model
and a PyTorch model that start equal stay equal step after step -- up to the last bit: PyTorch
computes ``a + alpha * b`` with one fused multiply-add (one rounding) where the CPU has it,
NumPy with two. Updates work on the parameters' NumPy arrays in place: an update is not part
of any graph, and modules keep holding the same Parameter objects.
"""
from __future__ import annotations

import math

import numpy as np

from .core.checks import ArgumentTypeError, bad_argument, non_negative_real, positive_int
from .autograd import no_grad
from .core.tensor import Tensor, as_array

__all__ = ["Optimizer", "SGD", "Adam", "LRScheduler", "StepLR", "CosineAnnealingLR"]


def _saved_count(owner: str, key: str, value) -> int:
    """A step or epoch count read back from a state dict: a 0-d integer >= 0."""
    value = np.asarray(value)
    if value.shape != () or value.dtype.kind not in "iu" or value < 0:
        raise ValueError(f"{owner}.load_state_dict: {key!r} must be a count >= 0, got {value!r}")
    return int(value)


def _saved_rate(owner: str, key: str, value) -> float:
    """A learning rate read back from a state dict: a 0-d number >= 0."""
    value = np.asarray(value)
    if value.shape != () or value.dtype.kind not in "iuf":
        raise ValueError(f"{owner}.load_state_dict: {key!r} must be a number, got {value!r}")
    return non_negative_real(owner, key, float(value))


class Optimizer:
    """Holds the parameters to update and the learning rate ``lr``.

    Subclasses implement ``_change(param, grad, state)``: the amount to subtract from one
    parameter; ``step`` subtracts it in place, under ``no_grad``, from every parameter that has
    a gradient. (In place, so the parameter's version moves on and backward through a graph
    built before the step raises instead of using the new weights.) ``state`` is that parameter's own dict (momentum
    buffers, moment estimates), kept between steps; ``buffers`` names what it may hold, which
    ``state_dict`` saves.
    """

    buffers: tuple = ()

    def __init__(self, params, lr: float):
        name = type(self).__name__
        if isinstance(params, Tensor):
            raise TypeError(f"{name}: params must be an iterable of tensors (e.g. "
                            f"model.parameters()), got a single tensor; wrap it in a list")
        try:
            params = list(params)
        except TypeError:  # None, a number: not iterable
            bad_argument(name, "params", "an iterable of tensors (e.g. model.parameters())",
                         params, ArgumentTypeError)
        if not params:
            raise ValueError(f"{name}: got an empty parameter list (did the model define any "
                             f"parameters, or was a generator already used up?)")
        for index, param in enumerate(params):
            if not isinstance(param, Tensor):
                raise TypeError(f"{name}: parameter {index} is a {type(param).__name__}, "
                                f"expected a Tensor")
            if not param.requires_grad or not param.is_leaf:
                raise ValueError(f"{name}: parameter {index} (shape {param.shape}) must be a "
                                 f"leaf tensor with requires_grad=True")
        if len({id(p) for p in params}) != len(params):
            raise ValueError(f"{name}: some parameters appear more than once in the list")
        self.params = params
        self.lr = non_negative_real(name, "lr", lr)
        self.state = [{} for _ in params]

    def zero_grad(self) -> None:
        """Forget the gradients (set ``.grad`` to None, as PyTorch does by default)."""
        for param in self.params:
            param.grad = None

    def step(self) -> None:
        """Update every parameter that has a gradient; the others are left alone."""
        with no_grad():
            for param, state in zip(self.params, self.state):
                grad = param.grad
                if grad is not None:
                    param.sub_(self._change(param.data, grad.data, state))

    def _change(self, param: np.ndarray, grad: np.ndarray, state: dict) -> np.ndarray:
        raise NotImplementedError

    # -- checkpoints ----------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """What the optimizer has learned, as flat name -> array entries ``mg.save`` writes as
        they are: ``"lr"`` (a schedule changes it) and each parameter's buffers as
        ``"<index>.<buffer>"`` -- ``"0.momentum_buffer"``, ``"2.exp_avg"``, ``"2.step"`` --
        the index being the parameter's place in the list the optimizer was built with. The
        arrays are copies: later steps do not change them."""
        state = {"lr": np.array(self.lr)}
        for index, buffers in enumerate(self.state):
            for name, value in buffers.items():
                state[f"{index}.{name}"] = np.array(value)
        return state

    def load_state_dict(self, state_dict) -> None:
        """Restore a ``state_dict()`` of an optimizer of the same kind over the same parameters,
        e.g. to resume training from a checkpoint. Every entry is checked first -- its name,
        and a buffer's shape and dtype against its parameter -- and if one is wrong a
        ValueError says which, and the optimizer is left as it was."""
        name = type(self).__name__
        entries = {key: np.asarray(as_array(value))
                   for key, value in state_dict.items()}
        if "lr" not in entries:
            raise ValueError(f"{name}.load_state_dict: expected a number 'lr', got none")
        lr = _saved_rate(name, "lr", entries.pop("lr"))
        state = [{} for _ in self.params]
        for key, value in entries.items():
            index, _, buffer = key.partition(".")
            if not (index.isdigit() and int(index) < len(self.params)
                    and buffer in self.buffers):
                raise ValueError(f"{name}.load_state_dict: unexpected entry {key!r}; expected "
                                 f"'lr' and '<parameter index>.<buffer>' with an index below "
                                 f"{len(self.params)} and a buffer in {self.buffers}")
            param = self.params[int(index)].data
            if buffer == "step":
                state[int(index)][buffer] = _saved_count(name, key, value)
            elif value.shape != param.shape or value.dtype != param.dtype:
                raise ValueError(f"{name}.load_state_dict: {key!r} has shape {value.shape} and "
                                 f"dtype {value.dtype}; its parameter has shape {param.shape} "
                                 f"and dtype {param.dtype} (a state dict of other parameters?)")
            else:
                state[int(index)][buffer] = value.copy()
        for index, buffers in enumerate(state):
            if buffers and set(buffers) != set(self.buffers):
                raise ValueError(f"{name}.load_state_dict: parameter {index} has "
                                 f"{sorted(buffers)}, expected all of {list(self.buffers)}")
        self.lr, self.state = lr, state

    def __repr__(self):
        settings = ", ".join(f"{k}={v}" for k, v in vars(self).items()
                             if k not in ("params", "state"))
        return f"{type(self).__name__}({len(self.params)} parameters, {settings})"


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with momentum (heavy-ball or Nesterov) and L2
    weight decay. With ``g = grad + weight_decay * param``::

        buf = g                                   (first step)
        buf = momentum * buf + (1 - dampening) * g  (later steps)
        param -= lr * (g + momentum * buf if nesterov else buf)

    and without momentum simply ``param -= lr * g``.
    """

    buffers = ("momentum_buffer",)  # per parameter, in state_dict

    def __init__(self, params, lr: float, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        super().__init__(params, lr)
        non_negative_real("SGD", "momentum", momentum)
        non_negative_real("SGD", "dampening", dampening)
        non_negative_real("SGD", "weight_decay", weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(f"SGD: nesterov needs momentum > 0 and dampening 0, got "
                             f"momentum={momentum}, dampening={dampening}")
        self.momentum = float(momentum)
        self.dampening = float(dampening)
        self.weight_decay = float(weight_decay)
        self.nesterov = bool(nesterov)

    def _change(self, param, grad, state):
        if self.weight_decay:
            grad = grad + self.weight_decay * param
        if self.momentum:
            buffer = state.get("momentum_buffer")
            if buffer is None:
                buffer = state["momentum_buffer"] = grad.copy()
            else:
                buffer *= self.momentum
                buffer += (1 - self.dampening) * grad if self.dampening else grad
            grad = grad + self.momentum * buffer if self.nesterov else buffer
        return self.lr * grad


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias-corrected moment estimates. ``weight_decay`` is L2
    regularisation added to the gradient, as in ``torch.optim.Adam`` (not AdamW's decoupled
    decay). With ``g = grad + weight_decay * param`` and step count ``t``::

        m += (1 - beta1) * (g - m)
        v = beta2 * v + (1 - beta2) * g * g
        param -= lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)
    """

    buffers = ("step", "exp_avg", "exp_avg_sq")  # per parameter, in state_dict

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        super().__init__(params, lr)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            bad_argument("Adam", "betas", "a pair (beta1, beta2)", betas, ArgumentTypeError)
        for index, beta in enumerate(betas):
            if non_negative_real("Adam", f"betas[{index}]", beta) >= 1.0:
                bad_argument("Adam", f"betas[{index}]", "in [0, 1)", beta)
        non_negative_real("Adam", "eps", eps)
        non_negative_real("Adam", "weight_decay", weight_decay)
        self.betas = (float(betas[0]), float(betas[1]))
        self.eps = float(eps)
        self.weight_decay = float(weight_decay)

    def _change(self, param, grad, state):
        beta1, beta2 = self.betas
        if self.weight_decay:
            grad = grad + self.weight_decay * param
        if not state:
            state.update(step=0, exp_avg=np.zeros_like(param), exp_avg_sq=np.zeros_like(param))
        state["step"] += 1
        step, exp_avg, exp_avg_sq = state["step"], state["exp_avg"], state["exp_avg_sq"]
        # m moves a fraction (1 - beta1) of the way towards g: PyTorch's lerp form.
        exp_avg += (1 - beta1) * (grad - exp_avg)
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * grad * grad
        step_size = self.lr / (1 - beta1 ** step)
        denominator = np.sqrt(exp_avg_sq) / math.sqrt(1 - beta2 ** step)
        denominator += self.eps
        return step_size * exp_avg / denominator


# ----------------------------------------------------------------------------------------------
# Learning-rate schedules: call ``scheduler.step()`` once per epoch, after ``optimizer.step()``.
# ----------------------------------------------------------------------------------------------

class LRScheduler:
    """Sets ``optimizer.lr`` from the optimizer's initial lr and the epoch count ``last_epoch``
    (0 at construction, +1 per ``step()``). Subclasses give the closed-form ``lr_at(epoch)``."""

    def __init__(self, optimizer: Optimizer):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: expected a minigrad optimizer, got "
                            f"{type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.last_epoch = 0

    def lr_at(self, epoch: int) -> float:
        raise NotImplementedError

    def step(self) -> None:
        self.last_epoch += 1
        self.optimizer.lr = self.lr_at(self.last_epoch)

    def get_last_lr(self) -> list:
        """The learning rate set by the last step, as a one-element list (like PyTorch's)."""
        return [self.optimizer.lr]

    def state_dict(self) -> dict:
        """Where the schedule stands, as arrays ``mg.save`` writes: ``last_epoch`` and the
        ``base_lr`` it counts from (the optimizer's own state_dict holds the current lr)."""
        return {"last_epoch": np.array(self.last_epoch), "base_lr": np.array(self.base_lr)}

    def load_state_dict(self, state_dict) -> None:
        """Resume the schedule from ``state_dict()``; both entries are checked before either
        is used."""
        name = type(self).__name__
        if set(state_dict) != {"last_epoch", "base_lr"}:
            raise ValueError(f"{name}.load_state_dict: expected the entries 'last_epoch' and "
                             f"'base_lr', got {sorted(state_dict)}")
        epoch = _saved_count(name, "last_epoch", state_dict["last_epoch"])
        base_lr = _saved_rate(name, "base_lr", state_dict["base_lr"])
        self.last_epoch, self.base_lr = epoch, base_lr


class StepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1):
        step_size = positive_int("StepLR", "step_size", step_size)
        non_negative_real("StepLR", "gamma", gamma)
        super().__init__(optimizer)
        self.step_size = step_size
        self.gamma = float(gamma)

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class CosineAnnealingLR(LRScheduler):
    """Follow half a cosine from the initial lr down to ``eta_min`` over ``T_max`` epochs
    (and back up after that, as PyTorch's does)."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0):
        T_max = positive_int("CosineAnnealingLR", "T_max", T_max)
        non_negative_real("CosineAnnealingLR", "eta_min", eta_min)
        super().__init__(optimizer)
        self.T_max = T_max
        self.eta_min = float(eta_min)

    def lr_at(self, epoch: int) -> float:
        cosine = (1 + math.cos(math.pi * epoch / self.T_max)) / 2
        return self.eta_min + (self.base_lr - self.eta_min) * cosine
