"""Record ROS 2 messages to MCAP (ros2msg schemas + CDR) that Foxglove and `ros2 bag` open.

Messages are serialised with rclpy.serialization, i.e. exactly the bytes DDS carries. The schema is
the message definition with its dependencies appended (the layout rosbag2 writes), read from the
installed .msg files through the ament index.
"""
from __future__ import annotations

import importlib
import re
import threading
from pathlib import Path

from mcap.writer import CompressionType, Writer
from rclpy.serialization import serialize_message

SEPARATOR = "=" * 80
_PRIMITIVES = {"bool", "byte", "char", "float32", "float64", "int8", "uint8", "int16", "uint16", "int32", "uint32",
               "int64", "uint64", "string", "wstring"}


def type_name(msg_or_cls) -> str:
    """'sensor_msgs/msg/Image' for a message instance or class."""
    cls = msg_or_cls if isinstance(msg_or_cls, type) else type(msg_or_cls)
    pkg = cls.__module__.split(".")[0]
    return f"{pkg}/msg/{cls.__name__}"


def _msg_file(pkg: str, name: str) -> Path:
    from ament_index_python.packages import get_package_share_directory

    return Path(get_package_share_directory(pkg)) / "msg" / f"{name}.msg"


def _dependencies(text: str, pkg: str) -> list[tuple[str, str]]:
    deps = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        ftype = line.split()[0]
        if "=" in line.split()[1] if len(line.split()) > 1 else False:
            continue  # constant
        base = re.sub(r"\[.*\]$", "", ftype)
        base = re.sub(r"<=\d+$", "", base)
        if base in _PRIMITIVES:
            continue
        if base == "Header":
            deps.append(("std_msgs", "Header"))
        elif "/" in base:
            parts = base.split("/")
            deps.append((parts[0], parts[-1]))
        else:
            deps.append((pkg, base))
    return deps


def message_definition(full_type: str) -> str:
    """The full ros2msg definition text of e.g. 'sensor_msgs/msg/Image' (dependencies appended)."""
    pkg, _, name = full_type.split("/")
    main = _msg_file(pkg, name).read_text()
    seen: set[tuple[str, str]] = set()
    parts = [main.rstrip("\n")]
    stack = _dependencies(main, pkg)
    while stack:
        dep = stack.pop(0)
        if dep in seen:
            continue
        seen.add(dep)
        text = _msg_file(*dep).read_text()
        parts.append(f"{SEPARATOR}\nMSG: {dep[0]}/{dep[1]}\n{text.rstrip(chr(10))}")
        stack.extend(_dependencies(text, dep[0]))
    return "\n".join(parts) + "\n"


class McapRecorder:
    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        self._writer = Writer(self._file, compression=CompressionType.ZSTD)
        self._writer.start(profile="ros2", library="spatial_vlm_ros")
        self._schemas: dict[str, int] = {}
        self._channels: dict[str, int] = {}
        self._lock = threading.Lock()
        self.count = 0
        self._closed = False

    def write(self, topic: str, msg, stamp_ns: int) -> None:
        data = serialize_message(msg)
        full = type_name(msg)
        with self._lock:
            if self._closed:
                return
            if full not in self._schemas:
                self._schemas[full] = self._writer.register_schema(
                    name=full, encoding="ros2msg", data=message_definition(full).encode())
            if topic not in self._channels:
                self._channels[topic] = self._writer.register_channel(
                    topic=topic, message_encoding="cdr", schema_id=self._schemas[full])
            self._writer.add_message(self._channels[topic], log_time=int(stamp_ns), data=data,
                                     publish_time=int(stamp_ns), sequence=self.count)
            self.count += 1

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._writer.finish()
            self._file.close()


def read_messages(path: str | Path, topics: list[str] | None = None):
    """Yield (topic, message, log_time_ns) from an MCAP written by ROS 2 tools or by McapRecorder."""
    from mcap.reader import make_reader
    from rclpy.serialization import deserialize_message

    classes: dict[str, type] = {}
    with open(path, "rb") as f:
        reader = make_reader(f)
        for schema, channel, message in reader.iter_messages(topics=topics):
            if schema is None or channel.message_encoding != "cdr":
                continue
            name = schema.name if schema.name.count("/") == 2 else schema.name.replace("/", "/msg/", 1)
            if name not in classes:
                pkg, _, cls_name = name.split("/")
                classes[name] = getattr(importlib.import_module(f"{pkg}.msg"), cls_name)
            yield channel.topic, deserialize_message(message.data, classes[name]), message.log_time
