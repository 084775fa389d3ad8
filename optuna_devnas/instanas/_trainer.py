"""InstaNAS's three training phases (Cheng et al., AAAI 2020, section 3.4).

1. Pre-train the meta-graph with every option on, then with options dropped at random at a rate
   rising linearly to ``max_drop_rate`` (so every child learns to work on its own).
2. Search: per mini-batch, a controller step with self-critical REINFORCE (sample from
   ``p' = 0.8 p + 0.2 (1 - p)``, advantage = reward of the sample minus reward of the greedy
   policy, entropy bonus), then a meta-graph step on the sampled policies.
3. Fine-tune the meta-graph on the frozen controller's greedy policies.

The meta-graph follows one cosine learning-rate schedule over the three phases (the static
baseline trains for the same number of epochs under the same schedule). All randomness (batch
order, dropped options, sampled policies) comes from one seeded generator.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
import math

import optuna
import torch
import torch.nn.functional as F

from optuna_devnas._device import intra_op_threads
from optuna_devnas._steps import log_step
from optuna_devnas.data import TensorData
from optuna_devnas.instanas._config import InstaNASConfig
from optuna_devnas.instanas._controller import Controller, bernoulli_entropy, explore, greedy
from optuna_devnas.instanas._inference import (
    InstanceAwareNetwork,
    PolicyExport,
    export_policy,
    measure_per_image_latency,
)
from optuna_devnas.instanas._latency_table import OptionLatencyTable
from optuna_devnas.instanas._meta_graph import MetaGraph
from optuna_devnas.instanas._reward import RewardSchedule
from optuna_devnas.objectives import evaluate_error


@dataclass
class InstaNASResult:
    """What an InstaNAS run produced.

    Attributes:
        val_error:
            Validation error of the instance-aware network (greedy policies).
        latency:
            Measured mean seconds per validation image at batch size 1, controller included.
        table_latency:
            Mean table latency (seconds, options only) of the validation images' children.
        network:
            The trained :class:`InstanceAwareNetwork` (eval mode).
        policy:
            The children of the validation images (:class:`PolicyExport`).
        table:
            The option latency table the reward used.
        rewards:
            Mean reward of the sampled policies at each controller step.
        history:
            One dict per epoch of every phase (phase, epoch, val_error, ...).
    """

    val_error: float
    latency: float
    table_latency: float
    network: InstanceAwareNetwork
    policy: PolicyExport
    table: OptionLatencyTable
    rewards: list[float] = field(default_factory=list)
    history: list[dict[str, float | str]] = field(default_factory=list)


class InstaNAS:
    """Train a controller and a meta-graph with InstaNAS on a data set.

    Example:

        .. code-block:: python

            from optuna_devnas.data import load_data
            from optuna_devnas.instanas import InstaNAS, InstaNASConfig

            result = InstaNAS(config=InstaNASConfig(width_mult=0.5)).fit(load_data("digits32"))
            result.val_error, result.latency, result.policy.counts

    Args:
        config:
            The run's settings (:class:`InstaNASConfig`). Default: its defaults.
        latency_table:
            A table measured before (or loaded from JSON); None measures one on
            ``config.device`` at the start of :meth:`fit`. Default None.
    """

    def __init__(
        self,
        *,
        config: InstaNASConfig | None = None,
        latency_table: OptionLatencyTable | None = None,
    ) -> None:
        self.config = InstaNASConfig() if config is None else config
        if latency_table is not None and not isinstance(latency_table, OptionLatencyTable):
            raise ValueError(
                f"Got latency_table={latency_table!r}, but expected an OptionLatencyTable or None."
            )
        self.latency_table = latency_table

    def build(self, data: TensorData) -> tuple[MetaGraph, Controller]:
        """A fresh meta-graph and controller for ``data`` (seeded by ``config.seed``)."""
        c = self.config
        torch.manual_seed(c.seed)
        meta_graph = MetaGraph(
            num_classes=data.num_classes,
            input_shape=data.input_shape,
            width_mult=c.width_mult,
            stem_stride=c.stem_stride,
        )
        controller = Controller(
            in_channels=data.input_shape[0],
            num_blocks=meta_graph.num_blocks,
            num_options=meta_graph.num_options,
            resolution=c.controller_resolution,
            width=c.controller_width,
        )
        return meta_graph, controller

    def fit(self, data: TensorData, *, trial: optuna.Trial | None = None) -> InstaNASResult:
        """Run the three phases on ``data`` and evaluate the result on its validation split.

        Args:
            data:
                Training and validation images.
            trial:
                With a trial, every controller step's reward, accuracy, table latency, policy
                entropy and options used, and every epoch's validation error and measured
                latency go to :func:`optuna_devnas.tracking.log_step`; in single-objective
                studies each search and fine-tune epoch's validation error is reported to the
                trial, and ``optuna.TrialPruned`` is raised when its pruner says so.
        """
        with intra_op_threads(self.config.threads):
            return _Run(self, data, trial).run()


class _Run:
    """The state of one :meth:`InstaNAS.fit` call."""

    def __init__(self, owner: InstaNAS, data: TensorData, trial: optuna.Trial | None) -> None:
        c = self.config = owner.config
        self.data = data
        self.trial = trial
        self.device = torch.device(c.device)
        meta_graph, controller = owner.build(data)
        self.meta_graph = meta_graph.to(self.device).to(memory_format=torch.channels_last)
        self.controller = controller.to(self.device).to(memory_format=torch.channels_last)
        self.network = InstanceAwareNetwork(controller=self.controller, meta_graph=self.meta_graph)
        self.generator = torch.Generator().manual_seed(c.seed)
        self.table = owner.latency_table or OptionLatencyTable.measure(
            self.meta_graph,
            threads=c.threads,
            rounds=c.table_rounds,
            device=self.device,
            seed=c.seed,
        )
        self.table.check(self.meta_graph)
        self.schedule = RewardSchedule(
            all_latency=self.table.reference("all"),
            mbv2_latency=self.table.reference("mbv2"),
            min_latency=self.table.reference("min"),
            epochs=c.search_epochs,
            upper_start=c.upper_start,
            upper_end=c.upper_end,
            pos_w=c.pos_w,
            neg_w=c.neg_w,
        )
        self.steps_per_epoch = math.ceil(len(data.train_y) / c.batch_size)
        self.optimizer = torch.optim.SGD(
            self.meta_graph.parameters(),
            lr=c.lr,
            momentum=0.9,
            nesterov=True,
            weight_decay=c.weight_decay,
        )
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.optimizer, T_max=c.total_epochs * self.steps_per_epoch
        )
        self.controller_optimizer = torch.optim.Adam(
            self.controller.parameters(), lr=c.controller_lr
        )
        self.rewards: list[float] = []
        self.history: list[dict[str, float | str]] = []
        self.epoch = 0  # across all phases
        self.reported = 0  # intermediate values reported to the trial

    def batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(self.data.train_y), generator=self.generator)
        for start in range(0, len(order), self.config.batch_size):
            index = order[start : start + self.config.batch_size]
            x = self.data.train_x[index].to(self.device)
            yield (
                x.contiguous(memory_format=torch.channels_last),
                self.data.train_y[index].to(self.device),
            )

    def meta_graph_step(self, x: torch.Tensor, y: torch.Tensor, policy: torch.Tensor) -> float:
        self.meta_graph.train()
        loss = F.cross_entropy(self.meta_graph(x, policy), y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        return loss.item()

    def run(self) -> InstaNASResult:
        c = self.config
        blocks, options = self.meta_graph.num_blocks, self.meta_graph.num_options
        total = max(1, c.pretrain_epochs * self.steps_per_epoch - 1)
        step = 0
        for _ in range(c.pretrain_epochs):
            losses = []
            for x, y in self.batches():
                drop = c.max_drop_rate * step / total  # rises linearly from 0
                keep = torch.rand(x.shape[0], blocks, options, generator=self.generator) >= drop
                losses.append(self.meta_graph_step(x, y, keep.to(self.device)))
                step += 1
            self.end_epoch("pretrain", loss=sum(losses) / len(losses))
        step = 0
        for _ in range(c.search_epochs):
            for x, y in self.batches():
                # t counts search epochs done, in fractions of an epoch (see _reward).
                t = (step + 1) / self.steps_per_epoch
                policy = self.controller_step(x, y, t, step)
                self.meta_graph_step(x, y, policy)
                step += 1
            self.end_epoch("search", upper_bound=self.schedule.upper(step / self.steps_per_epoch))
        self.controller.eval()
        for _ in range(c.finetune_epochs):
            for x, y in self.batches():
                with torch.no_grad():
                    policy = greedy(self.controller(x))
                self.meta_graph_step(x, y, policy)
            self.end_epoch("finetune")
        return self.result()

    def controller_step(
        self, x: torch.Tensor, y: torch.Tensor, t: float, step: int
    ) -> torch.Tensor:
        """One self-critical REINFORCE step; returns the sampled (normalized) policy."""
        c = self.config
        self.controller.train()
        probs = self.controller(x)  # (batch, blocks, options)
        sample_probs = explore(probs, c.exploration)
        actions = torch.bernoulli(sample_probs.detach().cpu(), generator=self.generator)
        actions = actions.to(self.device)
        with torch.no_grad():
            self.meta_graph.eval()
            sampled = self.meta_graph.normalize(actions)
            greedy_policy = self.meta_graph.normalize(greedy(probs))
            # Both policies in one pass: half the per-operator overhead of two passes.
            logits = self.meta_graph(torch.cat([x, x]), torch.cat([sampled, greedy_policy]))
            right, greedy_right = (logits.argmax(dim=1) == torch.cat([y, y])).chunk(2)
            z = self.table.latency(sampled)  # (batch,) seconds
            reward = self.schedule(z, right, t)
            advantage = reward - self.schedule(self.table.latency(greedy_policy), greedy_right, t)
        log_prob = (
            actions * sample_probs.clamp_min(1e-6).log()
            + (1 - actions) * (1 - sample_probs).clamp_min(1e-6).log()
        ).sum(dim=(1, 2))  # (batch,)
        # The entropy bonus is summed over an image's blocks and options, like the policy
        # gradient term and as the authors' search code does: averaged over options, it is 85
        # times weaker and the greedy policy collapses to one child.
        entropy = bernoulli_entropy(probs)  # (batch, blocks, options)
        loss = -(advantage * log_prob).mean() - c.entropy_weight * entropy.sum(dim=(1, 2)).mean()
        self.controller_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.controller_optimizer.step()
        mean_reward = float(reward.mean())
        self.rewards.append(mean_reward)
        for key, value in (
            ("reward", mean_reward),
            ("accuracy", float(right.float().mean())),
            ("table_latency", float(z.mean())),
            ("policy_entropy", entropy.mean().item()),
            ("options_used", float(sampled.sum(dim=(1, 2)).float().mean())),
        ):
            log_step(self.trial, f"instanas.{key}", value, step)
        return sampled

    def validate(self) -> tuple[float, float]:
        """(validation error, mean table latency) of the greedy instance-aware network."""
        self.network.eval()
        error = evaluate_error(self.network, self.data.val_x, self.data.val_y)
        with torch.no_grad():
            policy = self.network.policy(self.data.val_x.to(self.device))
        return error, float(self.table.latency(policy).mean())

    def measured_latency(self) -> float:
        images = self.data.val_x[: self.config.latency_images].to(self.device)
        self.network.eval()
        return measure_per_image_latency(
            self.network, images, threads=self.config.threads, min_run_time=0.05
        )

    def end_epoch(self, phase: str, **extra: float) -> None:
        record: dict[str, float | str] = {"phase": phase, "epoch": self.epoch, **extra}
        if phase == "pretrain":
            self.meta_graph.eval()
            record["val_error"] = evaluate_error(self.meta_graph, self.data.val_x, self.data.val_y)
        else:
            record["val_error"], record["table_latency"] = self.validate()
            if self.config.measure_every_epoch:
                record["measured_latency"] = self.measured_latency()
        for key in ("val_error", "table_latency", "measured_latency"):
            if key in record:
                log_step(self.trial, f"instanas.epoch_{key}", float(record[key]), self.epoch)
        self.history.append(record)
        self.epoch += 1
        trial = self.trial
        if phase != "pretrain" and trial is not None and len(trial.study.directions) == 1:
            # Optuna's pruners (and trial.report) only support single-objective studies.
            trial.report(float(record["val_error"]), self.reported)
            self.reported += 1
            if trial.should_prune():
                raise optuna.TrialPruned(
                    f"Pruned after {phase} epoch {self.epoch} with val_error="
                    f"{record['val_error']}."
                )

    def result(self) -> InstaNASResult:
        error, table_latency = self.validate()
        latency = self.measured_latency()
        return InstaNASResult(
            val_error=error,
            latency=latency,
            table_latency=table_latency,
            network=self.network,
            policy=export_policy(self.network, self.data.val_x),
            table=self.table,
            rewards=self.rewards,
            history=self.history,
        )
