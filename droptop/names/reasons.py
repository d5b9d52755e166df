"""Raw drop-reason values -> names, read from the running kernel, never guessed.

Drop reasons are kernel enums with no stable ABI: the same number names
different reasons on different kernels, and subsystems (mac80211, Open vSwitch,
qdisc) put their own reasons in the upper bits (``raw = subsys << shift | code``)
with names that only their own enum (often in a module's BTF) knows. So every
name here comes from the kernel being looked at:

1. BTF: ``enum skb_drop_reason`` for core reasons, ``enum
   skb_drop_reason_subsys`` for the subsystem ids and labels, and one enum per
   subsystem (``mac80211_drop_reason``, ``ovs_drop_reason``, ...) found in
   vmlinux or in ``/sys/kernel/btf/<module>``;
2. the ``skb:kfree_skb`` tracepoint's format file (core reasons only);
3. a raw label that cannot be wrong: ``0x7f`` for an unknown core value,
   ``subsys2:0x20001`` for anything else unknown.

Tables are kept per subsystem and never merged: ``mac80211_drop_reason`` also
holds ``RX_QUEUED = 0`` and ``RX_CONTINUE = 1``, which would mislabel core 0 and
1. A subsystem enum member names a value only if its subsystem bits equal that
subsystem's id on *this* kernel (the ids moved when MAC80211_MONITOR was
removed). Sentinels (``*_MAX``, ``*_NUM``, ``SUBSYS_MASK``, ``__``-prefixed and
code-0 base values) never become names.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from droptop.model import Reason
from droptop.names.btf import VMLINUX_BTF as VMLINUX_PATH
from droptop.names.btf import Btf, BtfEnum, BtfError, load_vmlinux, read_limited

VMLINUX_BTF = Path(VMLINUX_PATH)
TRACEFS_FORMAT_LIMIT = 1 << 20
"""The kfree_skb format file is ~4 KB; more than this is not that file."""
BTF_DIR = Path("/sys/kernel/btf")
TRACEFS_FORMATS = (
    Path("/sys/kernel/tracing/events/skb/kfree_skb/format"),
    Path("/sys/kernel/debug/tracing/events/skb/kfree_skb/format"),
)

CORE_ENUM = "skb_drop_reason"
CORE_PREFIX = "SKB_DROP_REASON_"
SUBSYS_ENUM = "skb_drop_reason_subsys"
SUBSYS_PREFIX = "SKB_DROP_REASON_SUBSYS_"
SHIFT_MEMBER = "SKB_DROP_REASON_SUBSYS_SHIFT"
DEFAULT_SHIFT = 16
"""SKB_DROP_REASON_SUBSYS_SHIFT is a #define on most kernels, invisible to BTF."""

RESCAN_INTERVAL = 5.0
"""Seconds between looks for newly loaded module BTF (a couple of stat calls)."""

_FALLBACK_CACHE_LIMIT = 4096
_U32_MAX = 0xFFFFFFFF


@dataclass(frozen=True)
class SubsysSource:
    """Where the names of one subsystem's reasons live."""

    label: str
    """Matches a subsystem label equal to it or starting with it plus '_'."""
    enum: str
    modules: tuple[str, ...]
    """Module BTF files (in /sys/kernel/btf) to try when vmlinux lacks the enum."""

    def matches(self, label: str) -> bool:
        return label == self.label or label.startswith(self.label + "_")


# Which enum names which subsystem: the one piece of kernel knowledge that is not
# in BTF (the ids and labels are). Unknown subsystems try "<label>_drop_reason".
SUBSYS_SOURCES = (
    SubsysSource("mac80211", "mac80211_drop_reason", ("mac80211",)),
    SubsysSource("openvswitch", "ovs_drop_reason", ("openvswitch",)),
    SubsysSource("qdisc", "qdisc_drop_reason", ()),
)

_PAIR = re.compile(r'\{\s*(0[xX][0-9a-fA-F]+|\d+)\s*,\s*"([^"\\]*)"\s*\}')


def is_sentinel(name: str) -> bool:
    """Enum members that mark ranges or bases, never a reason a packet dies for."""
    return (
        name.startswith("_")
        or name in ("MAX", "NUM")
        or name.endswith(("_MAX", "_NUM"))
        or "SUBSYS_MASK" in name
        or "SUBSYS_SHIFT" in name
    )


def source_for(label: str) -> SubsysSource:
    """The enum (and modules) holding ``label``'s reason names."""
    for source in SUBSYS_SOURCES:
        if source.matches(label):
            return source
    return SubsysSource(label, f"{label}_drop_reason", (label,))


def raw_label(raw: int, shift: int = DEFAULT_SHIFT) -> str:
    """The name shown when no table knows ``raw``: hex, plus the subsystem if not 0."""
    if raw < 0 or raw > _U32_MAX:
        return f"{raw:#x}"
    subsys = raw >> shift
    return f"0x{raw:x}" if subsys == 0 else f"subsys{subsys}:0x{raw:x}"


def parse_tracefs_format(text: str, shift: int = DEFAULT_SHIFT) -> dict[int, str]:
    """Core reasons from the ``__print_symbolic(REC->reason, ...)`` list of a format file.

    Entries whose value is not a number (older kernels without eval maps may
    print the enum member's name) are skipped rather than guessed.
    """
    start = text.find("__print_symbolic(REC->reason")
    if start < 0:
        return {}
    end = text.find(")", start)
    names: dict[int, str] = {}
    for match in _PAIR.finditer(text, start, end if end >= 0 else len(text)):
        text_value, name = match.group(1), match.group(2)
        value = int(text_value, 16 if text_value[:2] in ("0x", "0X") else 10)
        if value >> shift == 0 and name and not is_sentinel(name):
            names.setdefault(value, name)
    return names


class ReasonResolver:
    """Names raw drop-reason values for one kernel; never raises, never guesses."""

    def __init__(
        self,
        vmlinux: Btf | None,
        btf_dir: Path | None = None,
        format_file: Path | None = None,
        *,
        rescan_interval: float = RESCAN_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Build the tables now; a bad BTF or format file only degrades the source.

        ``btf_dir`` is a directory laid out like /sys/kernel/btf, searched for
        module BTF (split on top of ``vmlinux``); ``format_file`` is the
        kfree_skb tracepoint format, used only when BTF has no core names.
        """
        self._vmlinux = vmlinux
        self._btf_dir = btf_dir
        self._rescan_interval = rescan_interval
        self._clock = clock
        self._last_scan: float | None = None
        self._shift = DEFAULT_SHIFT
        self._core_id = 0
        self._labels: dict[int, str] = {0: "core"}
        self._pending: set[int] = set()
        """Known subsystems whose names were not found yet (module not loaded)."""
        self._tried: dict[str, tuple[int, int, int]] = {}
        """Module BTF files already read in vain, by (inode, size, mtime)."""
        self._names: dict[int, Reason] = {}
        self._fallbacks: dict[int, Reason] = {}
        self._table: tuple[Reason, ...] | None = None
        self._notes: list[str] = []
        self._best = "raw"
        if vmlinux is not None:
            self._load_btf(vmlinux)
        if self._best == "raw" and format_file is not None:
            self._load_tracefs(format_file)

    # --- construction -----------------------------------------------------------

    @classmethod
    def for_running_kernel(cls, vmlinux: Btf | None = None) -> ReasonResolver:
        """The running kernel: /sys/kernel/btf, else tracefs, else raw labels."""
        notes = []
        if vmlinux is None:
            try:
                vmlinux = load_vmlinux(str(VMLINUX_BTF))
            except BtfError as e:
                notes.append(f"no kernel BTF, reason names limited: {e}")
        format_file = next((p for p in TRACEFS_FORMATS if _is_file(p)), None)
        resolver = cls(vmlinux, BTF_DIR if _is_dir(BTF_DIR) else None, format_file)
        resolver._notes[:0] = notes
        return resolver

    @classmethod
    def from_path(cls, path: Path) -> ReasonResolver:
        """Another kernel's BTF (``--btf``): a raw vmlinux BTF file, or a directory
        like /sys/kernel/btf. Unlike for_running_kernel, an unreadable vmlinux is
        a BtfError: the user asked for exactly this file. The running kernel's
        tracefs is never consulted: it describes a different kernel.
        """
        path = Path(path)
        if _is_dir(path):
            return cls(Btf.from_file(path / "vmlinux"), path)
        return cls(Btf.from_file(path))

    @classmethod
    def from_table(cls, reasons: Iterable[Reason]) -> ReasonResolver:
        """Names as a snapshot saved them (resolved on the machine that took it).

        Saved raw labels carry no name, so they are not turned into snapshot
        names; their subsystem labels are still learned.
        """
        resolver = cls(None)
        for reason in reasons:
            subsys = reason.raw >> DEFAULT_SHIFT if reason.raw >= 0 else -1
            if subsys >= 0 and reason.subsys and not reason.subsys.startswith("subsys"):
                resolver._labels.setdefault(subsys, reason.subsys)
            if reason.source != "raw":
                resolver._names[reason.raw] = Reason(
                    reason.raw, reason.name, reason.subsys, "snapshot"
                )
        resolver._best = "snapshot"
        return resolver

    def _load_btf(self, vmlinux: Btf) -> None:
        try:
            subsys_enum = vmlinux.find_enum(SUBSYS_ENUM)
            core_enum = vmlinux.find_enum(CORE_ENUM)
        except BtfError as e:
            self._notes.append(f"kernel BTF unusable for reason names: {e}")
            self._vmlinux = None
            return
        self._shift = self._find_shift(subsys_enum, core_enum)
        if subsys_enum is not None:
            self._read_subsystems(subsys_enum)
        if core_enum is None:
            self._notes.append(f"kernel BTF has no enum {CORE_ENUM}: no core reason names")
        else:
            core = self._core_names(core_enum)
            if core:
                self._add_names(core)
                self._best = "btf"
        self._pending = {sid for sid in self._labels if sid != self._core_id}
        self._find_subsystem_names(in_vmlinux=True)

    def _find_shift(self, *enums: BtfEnum | None) -> int:
        for enum in enums:
            for name, value in enum.members if enum is not None else ():
                if name == SHIFT_MEMBER:
                    if 0 < value < 32:
                        return value
                    self._notes.append(f"ignoring {SHIFT_MEMBER} = {value}")
        return DEFAULT_SHIFT

    def _read_subsystems(self, enum: BtfEnum) -> None:
        """Subsystem ids and labels: CORE -> core, MAC80211_UNUSABLE -> mac80211_unusable."""
        labels: dict[int, str] = {}
        for name, value in enum.members:
            if not name.startswith(SUBSYS_PREFIX) or is_sentinel(name):
                continue
            if 0 <= value < 1 << (32 - self._shift):
                labels.setdefault(value, name[len(SUBSYS_PREFIX) :].lower())
        self._core_id = next((sid for sid, label in labels.items() if label == "core"), 0)
        labels.setdefault(self._core_id, "core")
        self._labels = labels

    def _core_names(self, enum: BtfEnum) -> dict[int, Reason]:
        label = self._labels[self._core_id]
        names: dict[int, Reason] = {}
        for name, value in enum.members:
            if value < 0 or value >> self._shift != self._core_id or is_sentinel(name):
                continue
            short = name[len(CORE_PREFIX) :] if name.startswith(CORE_PREFIX) else name
            names.setdefault(value, Reason(value, short, label, "btf"))
        return names

    def _subsystem_names(self, enum: BtfEnum, sid: int) -> dict[int, Reason]:
        """Members of ``enum`` in subsystem ``sid``; code 0 is the subsystem's base."""
        code_mask = (1 << self._shift) - 1
        label = self._labels[sid]
        names: dict[int, Reason] = {}
        for name, value in enum.members:
            if value < 0 or value >> self._shift != sid or not value & code_mask:
                continue
            if not is_sentinel(name):
                names.setdefault(value, Reason(value, name, label, "btf"))
        return names

    def _add_names(self, names: Mapping[int, Reason]) -> None:
        for raw, reason in names.items():
            self._names.setdefault(raw, reason)
        self._table = None

    def _load_tracefs(self, path: Path) -> None:
        try:
            text = read_limited(path, TRACEFS_FORMAT_LIMIT).decode(errors="replace")
        except BtfError as e:
            self._notes.append(f"cannot read {path}: {e}")
            return
        core = parse_tracefs_format(text, self._shift)
        if not core:
            self._notes.append(f"{path} lists no drop reasons")
            return
        label = self._labels[self._core_id]
        self._add_names({raw: Reason(raw, name, label, "tracefs") for raw, name in core.items()})
        self._best = "tracefs"

    # --- subsystem tables -------------------------------------------------------

    def _find_subsystem_names(self, *, in_vmlinux: bool) -> bool:
        """Look for the pending subsystems' enums; True if any names were added.

        vmlinux never changes, so it is searched only once (``in_vmlinux``);
        module BTF files are searched again on rescans.
        """
        self._last_scan = self._clock()
        groups: dict[SubsysSource, list[int]] = {}
        for sid in sorted(self._pending):
            groups.setdefault(source_for(self._labels[sid]), []).append(sid)
        added = False
        for source, sids in groups.items():
            enum = self._vmlinux_enum(source.enum) if in_vmlinux else None
            for module in source.modules if enum is None else ():
                enum = self._module_enum(module, source.enum)
                if enum is not None:
                    break
            if enum is None:
                if not source.modules:  # only vmlinux could have had it: stop looking
                    self._pending.difference_update(sids)
                continue
            for sid in sids:
                names = self._subsystem_names(enum, sid)
                self._add_names(names)
                self._pending.discard(sid)
                added = added or bool(names)
        return added

    def _vmlinux_enum(self, name: str) -> BtfEnum | None:
        assert self._vmlinux is not None
        try:
            return self._vmlinux.find_enum(name)
        except BtfError as e:
            self._notes.append(f"enum {name} unusable: {e}")
            return None

    def _module_enum(self, module: str, name: str) -> BtfEnum | None:
        """``name`` from /sys/kernel/btf/<module>, split on vmlinux alone."""
        if self._btf_dir is None or self._vmlinux is None:
            return None
        path = self._btf_dir / module
        try:
            st = path.stat()
        except OSError:
            return None
        signature = (st.st_ino, st.st_size, st.st_mtime_ns)
        if self._tried.get(module) == signature:
            return None
        self._tried[module] = signature
        try:
            enum = Btf.from_file(path, base=self._vmlinux).find_enum(name)
        except BtfError as e:
            self._notes.append(f"module BTF {module} unusable: {e}")
            return None
        if enum is None:
            self._notes.append(f"module BTF {module} has no enum {name}")
        return enum

    def _maybe_rescan(self, raw: int) -> bool:
        """A module may have loaded since: look again, at most every rescan_interval."""
        if not self._pending or self._btf_dir is None or raw >> self._shift not in self._pending:
            return False
        last = self._last_scan
        if last is not None and self._clock() - last < self._rescan_interval:
            return False
        return self._find_subsystem_names(in_vmlinux=False)

    # --- queries ------------------------------------------------------------------

    def resolve(self, raw: int) -> Reason:
        """The name of ``raw`` on this kernel, or a raw label: never a wrong name."""
        reason = self._names.get(raw)
        if reason is not None:
            return reason
        if 0 <= raw <= _U32_MAX and self._maybe_rescan(raw):
            reason = self._names.get(raw)
            if reason is not None:
                return reason
        reason = self._fallbacks.get(raw)
        if reason is None:
            reason = self._fallback(raw)
            if len(self._fallbacks) >= _FALLBACK_CACHE_LIMIT:
                self._fallbacks.clear()
            self._fallbacks[raw] = reason
        return reason

    def _fallback(self, raw: int) -> Reason:
        if raw < 0 or raw > _U32_MAX:
            return Reason(raw, raw_label(raw), "invalid", "raw")
        sid = raw >> self._shift
        label = self._labels.get(sid, f"subsys{sid}")
        name = f"0x{raw:x}" if sid == self._core_id else f"subsys{sid}:0x{raw:x}"
        return Reason(raw, name, label, "raw")

    def table(self) -> tuple[Reason, ...]:
        """Every named reason known now (core and subsystems), sorted by raw value."""
        if self._table is None:
            self._table = tuple(sorted(self._names.values(), key=lambda r: r.raw))
        return self._table

    @property
    def best_source(self) -> str:
        """Where the core names came from: btf, tracefs, raw or snapshot."""
        return self._best

    @property
    def shift(self) -> int:
        """Bits a subsystem id is shifted left by in a raw value."""
        return self._shift

    @property
    def subsystems(self) -> dict[int, str]:
        """Subsystem id -> label on this kernel ({0: 'core'} before 6.4)."""
        return dict(self._labels)

    @property
    def notes(self) -> tuple[str, ...]:
        """One-line reasons why some names are missing (worth showing once)."""
        return tuple(self._notes)


def _is_file(path: Path) -> bool:
    """Unlike Path.is_file, a permission error (debugfs as non-root) just means no."""
    return os.path.isfile(path)


def _is_dir(path: Path) -> bool:
    return os.path.isdir(path)
