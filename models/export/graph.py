"""A small helper for writing ONNX graphs by hand, node by node."""

from __future__ import annotations

from pathlib import Path

import numpy as np

OPSET = 17


class GraphBuilder:
    """Collects nodes and initializers; each op call returns its output name."""

    def __init__(self, name: str, parent: GraphBuilder | None = None) -> None:
        self.name = name
        self.nodes: list = []
        self.initializers: list = []
        self.inputs: list = []
        self.outputs: list = []
        self._count = 0
        self._consts: dict[tuple, str] = {}
        self._parent = parent

    def _fresh(self, hint: str) -> str:
        if self._parent is not None:  # names must stay unique across a graph and its bodies
            return self._parent._fresh(hint)
        self._count += 1
        return f"{hint}_{self._count}"

    def body(self, name: str) -> GraphBuilder:
        """A builder for a control-flow body (Scan, Loop) that may read this graph's values."""
        return GraphBuilder(name, parent=self)

    def graph(self):
        """This builder's nodes as an ONNX GraphProto (for bodies)."""
        from onnx import helper

        return helper.make_graph(self.nodes, self.name, self.inputs, self.outputs,
                                 self.initializers)

    def input(self, name: str, elem_type: int, shape: list) -> str:
        """Declare a graph input."""
        from onnx import helper

        self.inputs.append(helper.make_tensor_value_info(name, elem_type, shape))
        return name

    def output(self, name: str, value: str, elem_type: int, shape: list | None) -> None:
        """Declare a graph output fed by `value`."""
        from onnx import helper

        self.op("Identity", value, out=name)
        self.outputs.append(helper.make_tensor_value_info(name, elem_type, shape))

    def weight(self, name: str, array: np.ndarray) -> str:
        """Add an initializer (a weight) and return its name."""
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(np.array(array, order="C"), name))
        return name

    def const(self, value, dtype=np.int64) -> str:
        """A small constant tensor, deduplicated by value."""
        array = np.asarray(value, dtype=dtype)
        key = (array.dtype.str, array.shape, array.tobytes())
        if key not in self._consts:
            self._consts[key] = self.weight(self._fresh("const"), array)
        return self._consts[key]

    def op(self, op_type: str, *inputs: str, out: str | None = None, domain: str = "",
           **attrs) -> str:
        """Append one node with a single output."""
        from onnx import helper

        name = out or self._fresh(op_type.lower())
        self.nodes.append(helper.make_node(op_type, list(inputs), [name],
                                           name=self._fresh(op_type), domain=domain, **attrs))
        return name

    def save(self, path: Path, *, external: bool = True) -> Path:
        """Write the model; weights go to `<name>.data` next to it when `external`."""
        import onnx
        from onnx import helper

        path.parent.mkdir(parents=True, exist_ok=True)
        data = path.with_name(path.name + ".data")
        if data.exists():
            data.unlink()
        if external:
            _move_large_to_file(self.initializers, data)
        graph = helper.make_graph(self.nodes, self.name, self.inputs, self.outputs,
                                  self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET),
                                                        helper.make_opsetid("com.microsoft", 1)])
        model.ir_version = 8
        if external:
            onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                            location=data.name, size_threshold=1024)
        else:
            onnx.save_model(model, path)
        # Check from the file: an in-memory check fails past protobuf's 2 GB limit.
        onnx.checker.check_model(str(path))
        return path


def _move_large_to_file(initializers: list, data: Path, limit: int = 1 << 30) -> None:
    """Write tensors over `limit` bytes to `data` and point them there.

    A tensor past protobuf's 2 GB limit (Fara's fp32 embedding table, 2.2 GB) cannot enter a
    GraphProto; onnx.save_model appends the remaining tensors to the same file afterwards.
    """
    from onnx import TensorProto
    from onnx.external_data_helper import set_external_data

    large = [t for t in initializers if len(t.raw_data) > limit]
    if not large:
        return
    with data.open("ab") as f:
        for tensor in large:
            offset = f.tell()
            f.write(tensor.raw_data)
            set_external_data(tensor, data.name, offset, f.tell() - offset)
            tensor.ClearField("raw_data")
            tensor.data_location = TensorProto.EXTERNAL
