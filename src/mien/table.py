"""A results table as plain numpy columns, written to Parquet and CSV without pandas.

``mien analyze`` builds its table, adds the per-track columns and writes the table and its tracks
sidecar through :class:`ColumnTable`, so the command never imports pandas (about 0.4 s of CPU at
start-up, more than all the models). The files are byte for byte what pandas writes from the same
table (``DataFrame.to_parquet(index=False)``, ``DataFrame.to_csv(index=False)``; the Parquet file
carries the same ``pandas`` schema metadata, so ``pd.read_parquet`` gives the same frame back);
``tests/test_table.py`` compares both on a shared clip. :meth:`ColumnTable.to_pandas` is the
DataFrame users get from :attr:`mien.AnalysisResult.table`, built when they first ask for it.

Columns are 1-D numpy arrays of one length: numbers, booleans, and text as ``object`` arrays of
``str``. JSON Lines and columns of other kinds are written through pandas.
"""
from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover - pandas is imported only where a DataFrame is asked for
    import pandas as pd
    import pyarrow as pa


class ColumnTable:
    """Named columns of equal length, in order (a struct of arrays, like :class:`mien.faces.Faces`)."""

    def __init__(self, columns: Mapping[str, np.ndarray]) -> None:
        self.columns: dict[str, np.ndarray] = {k: np.asarray(v) for k, v in columns.items()}
        lengths = {len(v) for v in self.columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"columns of different lengths: {sorted(lengths)}")
        self._n = lengths.pop() if lengths else 0

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        return self._n

    def __contains__(self, name: object) -> bool:
        return name in self.columns

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.columns)

    @property
    def names(self) -> list[str]:
        return list(self.columns)

    @property
    def empty(self) -> bool:
        return self._n == 0

    def assign(self, **columns: np.ndarray) -> ColumnTable:
        """A new table with ``columns`` added (or replaced, in place of the old ones)."""
        return ColumnTable({**self.columns, **columns})

    def select(self, names: Iterable[str]) -> ColumnTable:
        """The columns ``names``, in that order."""
        return ColumnTable({k: self.columns[k] for k in names})

    def take(self, rows: np.ndarray) -> ColumnTable:
        """The rows ``rows`` (indices or a boolean mask) of every column."""
        return ColumnTable({k: v[rows] for k, v in self.columns.items()})

    @classmethod
    def concat(cls, tables: Iterable[ColumnTable]) -> ColumnTable | None:
        """The rows of ``tables`` one after another; None when their columns differ (pandas fills
        such gaps with NaN and widens dtypes: the caller does that through pandas)."""
        parts = [t for t in tables if len(t)]
        if not parts:
            return None
        if len(parts) == 1:
            return parts[0]
        names = parts[0].names
        if any(p.names != names for p in parts[1:]):
            return None
        if any(len({p.columns[k].dtype for p in parts}) > 1 for k in names):
            return None
        return cls({k: np.concatenate([p.columns[k] for p in parts]) for k in names})

    # ------------------------------------------------------------------ pandas
    def to_pandas(self) -> pd.DataFrame:
        """The same table as a DataFrame (imports pandas). Text columns stay ``object`` arrays of
        ``str``, as the table had them."""
        import pandas as pd

        df = pd.DataFrame(self.columns)
        text = {k: "object" for k, v in self.columns.items() if v.dtype == object}
        return df.astype(text) if text else df  # pandas >= 3 infers its "str" dtype for them

    @classmethod
    def from_pandas(cls, df: pd.DataFrame) -> ColumnTable:
        return cls({str(k): df[k].to_numpy() for k in df.columns})

    def writable(self) -> bool:
        """Whether :meth:`write_parquet` and :meth:`write_csv` can write every column (numbers,
        booleans, text) the way pandas would."""
        return all(v.ndim == 1 and (v.dtype.kind in "biuf" or (v.dtype == object and _all_str(v)))
                   and v.dtype.byteorder in "=|<" for v in self.columns.values()) and _text_bytes(self) < 2**31

    # ------------------------------------------------------------------ writers
    def to_arrow(self) -> pa.Table:
        """An Arrow table with the types and ``pandas`` schema metadata that
        ``pa.Table.from_pandas(self.to_pandas(), preserve_index=False)`` would give."""
        import pyarrow as pa

        arrays, meta = [], []
        for name, v in self.columns.items():
            arrays.append(_arrow_array(v))
            if v.dtype == object:  # pandas' conversion gives an empty text column Arrow's null type
                pandas_type, numpy_type = ("unicode" if len(v) else "empty"), "object"
            else:
                pandas_type = numpy_type = str(v.dtype)
            meta.append({"name": name, "field_name": name, "pandas_type": pandas_type,
                         "numpy_type": numpy_type, "metadata": None})
        pandas_meta = {"index_columns": [], "column_indexes": [], "columns": meta, "attributes": {},
                       "creator": {"library": "pyarrow", "version": pa.__version__},
                       "pandas_version": _pandas_version()}
        schema = pa.schema([pa.field(k, a.type) for k, a in zip(self.columns, arrays)],
                           metadata={b"pandas": json.dumps(pandas_meta).encode("utf8")})
        return pa.Table.from_arrays(arrays, schema=schema)

    def write_parquet(self, path: Path) -> None:
        """Write as Parquet (snappy, as ``DataFrame.to_parquet``) through a file object, so folders
        with non-UTF-8 names work."""
        import pyarrow.parquet as pq

        table = self.to_arrow()
        with open(path, "wb") as f:
            pq.write_table(table, f, compression="snappy")

    def write_csv(self, path: Path) -> None:
        """Write as CSV exactly as ``DataFrame.to_csv(path, index=False)`` does: numbers as numpy
        prints them (shortest round-trip form of their own precision), NaN and missing text empty,
        booleans ``True``/``False``, text quoted only where it must be."""
        with open(path, "w", newline="", encoding="utf-8") as f:
            self._csv_rows(f)

    def _csv_rows(self, f: IO[str]) -> None:
        writer = csv.writer(f, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
        writer.writerow(self.names)
        texts = [_csv_text(v) for v in self.columns.values()]
        chunk = 4096
        for start in range(0, self._n, chunk):
            writer.writerows(zip(*(t[start:start + chunk] for t in texts)))


def _arrow_array(values: np.ndarray) -> pa.Array:
    """One column as Arrow, from its buffers. ``pa.array`` would do, but it imports pandas to
    check for pandas types; and pandas' conversion, which this reproduces, stores NaN as null."""
    import pyarrow as pa

    n = len(values)
    if values.dtype == object and not n:
        return pa.nulls(0)
    if values.dtype == object:  # text: UTF-8 bytes and int32 offsets
        encoded = [x.encode("utf-8") for x in values]
        offsets = np.zeros(n + 1, np.int32)
        np.cumsum([len(e) for e in encoded], out=offsets[1:])
        return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))])
    if values.dtype == bool:
        return pa.Array.from_buffers(pa.bool_(), n, [None, pa.py_buffer(np.packbits(values, bitorder="little"))])
    data = np.ascontiguousarray(values)
    validity, nulls = None, 0
    if data.dtype.kind == "f":
        missing = np.isnan(data)
        nulls = int(missing.sum())
        if nulls:
            validity = pa.py_buffer(np.packbits(~missing, bitorder="little"))
    return pa.Array.from_buffers(pa.from_numpy_dtype(data.dtype), n, [validity, pa.py_buffer(data)], null_count=nulls)


def _all_str(values: np.ndarray) -> bool:
    return all(type(x) is str for x in values)


def _text_bytes(table: ColumnTable) -> int:
    """The largest text column's size (upper bound, 4 bytes a character): Arrow's ``string``
    holds up to 2 GiB a column; pandas writes bigger ones differently."""
    return max((sum(map(len, v)) * 4 for v in table.columns.values() if v.dtype == object), default=0)


def _csv_text(values: np.ndarray) -> list[str]:
    """One column's CSV fields, as pandas' ``to_csv`` formats them (``_to_native_types``)."""
    if values.dtype.kind == "f":
        text = values.astype(str)
        text[np.isnan(values)] = ""
        return text.tolist()
    if values.dtype == object:
        return ["" if x is None or (isinstance(x, float) and x != x) else str(x) for x in values]
    return values.astype(str).tolist()


def _pandas_version() -> str:
    """pandas' version without importing it (what pyarrow records as ``pandas_version``)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pandas")
    except PackageNotFoundError:  # pragma: no cover - pandas is a dependency of mien
        return ""
