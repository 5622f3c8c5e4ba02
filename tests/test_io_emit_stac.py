"""EMIT from STAC: static catalogs of tiny L2A granules -> `cropglobe download --points` ->
spectra table -> `cropglobe features --family hyperspectral`; downloads from a localhost server."""

from __future__ import annotations

import base64
import datetime as dt
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

pystac = pytest.importorskip("pystac")
pytest.importorskip("h5netcdf")

from cropglobe.cli.main import cli  # noqa: E402
from cropglobe.errors import DataFormatError  # noqa: E402
from cropglobe.io import fetch as fetch_mod  # noqa: E402
from cropglobe.io import read_dataset  # noqa: E402
from cropglobe.io.emit import (  # noqa: E402
    Spectra,
    read_emit_points,
    read_spectra_table,
    write_spectra_table,
)
from cropglobe.io.emit_stac import emit_assets, footprint_contains  # noqa: E402
from emit_files import GT, WL, glt, lonlat, write_emit, write_emit_mask  # noqa: E402

GT_B = (10.004, *GT[1:])  # granule B: shifted 4 cells east (overlaps A's columns 4-6)
A = "EMIT_L2A_RFL_001_20230701T100000_2318207_001"
B = "EMIT_L2A_RFL_001_20230815T093000_2322706_004"
C = "EMIT_L2A_RFL_001_20230901T110000_2324407_002"
CLOUDY = (5, 3)  # instrument pixel under point p2 in A (GLT cell (3, 2)), clouded in A's mask

#: point -> (granule grid, GLT cell) it is placed at
CELLS = {
    "p1": (GT, (0, 0)),  # in A only: pixel (0, 0)
    "p2": (GT, (3, 2)),  # in A only: pixel (5, 3), clouded
    "p3": (GT, (1, 5)),  # in A (pixel (0, 2)) and in B (its cell (1, 1))
    "p5": (GT, (2, 2)),  # in A's footprint, on a GLT cell without a pixel
}
P4 = (10.02, 44.999)  # outside every footprint


def _square(gt: tuple[float, ...]) -> dict[str, Any]:
    w, n = gt[0], gt[3]
    e, s = w + 7 * gt[1], n + 8 * gt[5]
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


def _item(
    name: str, geom: dict[str, Any], when: str, assets: dict[str, str], cloud: float = 10.0
) -> Any:
    ring = np.asarray(geom["coordinates"][0])
    bbox = [*ring.min(axis=0).tolist(), *ring.max(axis=0).tolist()]
    item = pystac.Item(name, geom, bbox, dt.datetime.fromisoformat(when),
                       {"eo:cloud_cover": cloud}, collection="EMITL2ARFL_001")  # fmt: skip
    for key, href in assets.items():
        item.add_asset(key, pystac.Asset(href, title=f"Download {Path(href).name}"))
    return item


def _catalog(root: Path, base: str | None = None) -> Path:
    """Three EMIT items: A (with a mask that clouds p2's pixel, and an UNCERT asset that is
    never fetched), B (no mask), C (its bbox meets the points' but its footprint holds none,
    and its files do not exist)."""
    files = root / "files"
    files.mkdir(parents=True)
    write_emit(files / f"{A}.nc", when="2023-07-01T10:00:00+0000")
    write_emit_mask(files / f"{A.replace('RFL', 'MASK')}.nc", cloud=[CLOUDY])
    write_emit(files / f"{B}.nc", gt=GT_B, offset=0.5, when="2023-08-15T09:30:00+0000")

    def href(name: str) -> str:
        return f"{base}/{name}" if base else str(files / name)

    cat = pystac.Catalog("emit", "tiny EMIT granules")
    cat.add_item(_item(A, _square(GT), "2023-07-01T10:00:00+00:00", {
        "data": href(f"{A}.nc"),
        "data1": href(f"{A.replace('RFL', 'RFLUNCERT')}.nc"),
        "data2": href(f"{A.replace('RFL', 'MASK')}.nc"),
        "browse": href(f"{A}.png"),
    }))  # fmt: skip
    cat.add_item(_item(B, _square(GT_B), "2023-08-15T09:30:00+00:00",
                       {"data": href(f"{B}.nc")}, cloud=60.0))  # fmt: skip
    triangle = {
        "type": "Polygon",
        "coordinates": [[[10.015, 44.990], [10.03, 44.990], [10.03, 44.998], [10.015, 44.990]]],
    }
    cat.add_item(_item(C, triangle, "2023-09-01T11:00:00+00:00", {"data": href(f"{C}.nc")}))
    cat.normalize_hrefs(str(root / "stac"))
    cat.save(catalog_type=pystac.CatalogType.ABSOLUTE_PUBLISHED)
    return root / "stac" / "catalog.json"


def _points(path: Path) -> Path:
    rows = [(k, *lonlat(*cell, gt=g)) for k, (g, cell) in CELLS.items()] + [("p4", *P4)]
    crops = {"p1": "wheat", "p2": "corn", "p3": "corn", "p4": "rice", "p5": "wheat"}
    table = pd.DataFrame(rows, columns=["id", "lon", "lat"])
    table["crop"] = table["id"].map(crops)
    table["farm"] = [f"f{i}" for i in range(len(rows))]
    table.to_csv(path, index=False)
    return path


def _download(catalog: Path, points: Path, out: Path, *extra: str) -> tuple[int, str]:
    args = ["download", "--stac", str(catalog), "--collection", "EMITL2ARFL_001",
            "--points", str(points), "--dates", "2023-06-01/2023-09-30", "-o", str(out),
            "-q", *extra]  # fmt: skip
    res = CliRunner().invoke(cli, args)
    return res.exit_code, res.output


def test_download_points_spectra_table(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path)
    out = tmp_path / "spectra.parquet"
    code, text = _download(catalog, _points(tmp_path / "points.csv"), out)
    assert code == 0, text
    assert (
        f"found 3 granules, 2 holding points; wrote {out}: 3 spectra of 2 points on 2 days "
        "(2023-07-01 … 2023-08-15), 285 bands 381-2493 nm; 1 masked (cloud 1); 3 of 5 points "
        "without a spectrum (1 outside every footprint), e.g. p2"
    ) in text
    df = pd.read_parquet(out)
    assert list(df.columns[:8]) == ["sample_id", "label", "farm", "lon", "lat", "date",
                                    "granule", "R0381"]  # fmt: skip
    assert df.shape == (3, 7 + WL.size) and df.columns[-1] == "R2493"
    assert df["sample_id"].tolist() == ["p1", "p3", "p3"]
    assert df["granule"].tolist() == [A, A, B] and df["label"].tolist() == ["wheat", "corn", "corn"]
    assert df["date"].dt.strftime("%Y-%m-%d").tolist() == ["2023-07-01", "2023-07-01",
                                                          "2023-08-15"]  # fmt: skip
    files = tmp_path / "files"
    for k, (sid, gran) in enumerate(zip(df["sample_id"], df["granule"], strict=True)):
        want = read_emit_points(files / f"{gran}.nc", [df["lon"][k]], [df["lat"][k]]).values[0]
        np.testing.assert_array_equal(df.iloc[k, 7:].to_numpy(np.float32), want, err_msg=sid)
    assert abs(df.iloc[2, 7] - df.iloc[1, 7] - 0.5) > 0  # p3 differs between the granules
    assert not (tmp_path / "emit-cache").exists()  # local hrefs are read in place

    # read back: exact wavelengths, fwhm and good flags from the Parquet metadata
    sp = read_spectra_table(out)
    assert isinstance(sp, Spectra) and sp.values.shape == (3, WL.size)
    np.testing.assert_allclose(sp.wavelengths, WL.astype(np.float32))
    np.testing.assert_allclose(sp.fwhm, 8.5)
    assert sp.good.sum() == WL.size - int(((WL > 1340) & (WL < 1450)).sum())
    assert list(sp.meta.columns) == ["sample_id", "label", "farm", "lon", "lat", "date", "granule"]
    assert sp.attrs["masked"] == {"cloud": 1} and sp.attrs["outside"] == 1
    np.testing.assert_array_equal(sp.values, df.iloc[:, 7:].to_numpy(np.float32))
    with pytest.raises(DataFormatError, match="is a spectra table"):
        read_dataset(out)

    # CSV: the same values; wavelengths from the names, no good flags
    csv = tmp_path / "spectra.csv"
    code, text = _download(catalog, tmp_path / "points.csv", csv, "--cache", str(tmp_path / "c"))
    assert code == 0, text
    back = read_spectra_table(csv)
    np.testing.assert_allclose(back.values, sp.values, rtol=1e-6)
    assert back.wavelengths[0] == 381.0 and back.fwhm is None and back.good.all()
    assert back.meta["date"].dt.day.tolist() == [1, 1, 15]


def test_mask_without_aggregate_and_assets(tmp_path: Path) -> None:
    from cropglobe.io.emit import emit_mask_reasons, read_emit_mask

    path = write_emit_mask(tmp_path / "m.nc", cloud=[(1, 1)], cirrus=[(2, 2)], aggregate=False)
    got = emit_mask_reasons(read_emit_mask(path, [1, 2, 3, -1], [1, 2, 3, 0]))
    assert got.tolist() == ["cloud", "cirrus", None, None]
    item = _item(A, _square(GT), "2023-07-01T10:00:00+00:00", {
        "data": "https://data.lpdaac.earthdatacloud.nasa.gov/lp-prod-protected/EMITL2ARFL.001/"
                f"{A}/{A.replace('RFL', 'RFLUNCERT')}.nc",
        "data1": f"https://x/{A.replace('RFL', 'MASK')}.nc", "data2": f"https://x/{A}.nc",
    })  # fmt: skip
    assert emit_assets(item) == (f"https://x/{A}.nc", f"https://x/{A.replace('RFL', 'MASK')}.nc")
    bare = _item(A, _square(GT), "2023-07-01T10:00:00+00:00", {"browse": "https://x/a.png"})
    with pytest.raises(DataFormatError, match=r"no EMIT L2A reflectance asset.*browse"):
        emit_assets(bare)
    outer = [[0, 0], [4, 0], [4, 4], [0, 4], [0, 0]]
    hole = [[1, 1], [2, 1], [2, 2], [1, 2], [1, 1]]
    holes = {"type": "Polygon", "coordinates": [outer, hole]}
    assert footprint_contains(holes, [0.5, 1.5, 3.5, 5], [0.5, 1.5, 3.5, 1]).tolist() == [
        True, False, True, False]  # fmt: skip


def test_features_hyperspectral(tmp_path: Path) -> None:
    n = 6
    flat = np.full((n, WL.size), 0.3, np.float32)
    flat += np.arange(n, dtype=np.float32)[:, None] * 0.01  # each spectrum flat at its own level
    good = ~((WL > 1340) & (WL < 1450))
    meta = pd.DataFrame({"sample_id": [f"s{i}" for i in range(n)],
                         "label": ["corn", "wheat", None, "corn", "wheat", "corn"],
                         "date": pd.to_datetime(["2023-07-01"] * n)})  # fmt: skip
    src = write_spectra_table(Spectra(flat, WL, np.full(WL.size, 8.5), good, meta),
                              tmp_path / "flat.parquet")  # fmt: skip
    runner = CliRunner()

    def run(name: str, *args: str) -> pd.DataFrame:
        res = runner.invoke(cli, ["features", str(src), "--family", "hyperspectral",
                                  "-o", str(tmp_path / name), *args])  # fmt: skip
        assert res.exit_code == 0, res.output
        return pd.read_parquet(tmp_path / name)

    s2 = run("s2.parquet", "--spectral", "s2")
    assert list(s2.columns[:4]) == ["sample_id", "label", "label_name", "date"]
    assert s2.shape == (n, 4 + 10) and s2.columns[4] == "B02"
    np.testing.assert_allclose(s2.iloc[:, 4:].to_numpy(), flat[:, :10], rtol=1e-6)
    assert s2["label"].tolist() == [0, 3, -1, 0, 3, 0]  # CropGlobe classes: corn 0, wheat 3
    params = json.loads((tmp_path / "s2.json").read_text())
    assert [s[0] for s in params["pipeline"]["steps"]] == ["good", "s2"]
    bands = run("bands.parquet", "--spectral", "bands", "--smooth")
    assert bands.shape[1] == 4 + int(good.sum() - ((WL >= 1800) & (WL <= 1970)).sum())
    np.testing.assert_allclose(bands["R0381"], flat[:, 0], rtol=1e-5)
    pca = run("pca.parquet", "--n-components", "2", "--where", "label=corn")
    assert list(pca.columns[-2:]) == ["pc01", "pc02"] and len(pca) == 3
    res = runner.invoke(cli, ["features", str(src), "--family", "hyperspectral", "--window",
                              "may-nov", "-o", str(tmp_path / "x.parquet")])  # fmt: skip
    assert res.exit_code == 2 and "--window does not apply to --family hyperspectral" in res.output
    res = runner.invoke(cli, ["features", str(src), "-o", str(tmp_path / "x.parquet")])
    assert res.exit_code == 2 and "--family hyperspectral" in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_download_emit_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    catalog = _catalog(tmp_path)
    res = CliRunner().invoke(cli, ["download", "--stac", str(catalog), "--collection",
                                   "emitl2arfl_001", "--bbox", "10", "44.9", "10.1", "45",
                                   "--dates", "2023-06-01/2023-09-30", "-o",
                                   str(tmp_path / "x.parquet")])  # fmt: skip
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1 and "give --points" in res.output
    points = _points(tmp_path / "points.csv")
    code, text = _download(catalog, points, tmp_path / "x.parquet", "--bands", "B04")
    assert code == 2 and "--bands applies to Sentinel-2, not to EMIT" in text
    code, text = _download(catalog, points, tmp_path / "x.parquet", "--no-harmonize", "--crs",
                           "EPSG:32632")  # fmt: skip
    assert code == 2 and "--crs, --no-harmonize apply to Sentinel-2, not to EMIT" in text
    from cropglobe.io import stac

    asked: list[object] = []
    search = stac.search_items

    def recorded(*args: Any, **kw: Any) -> Any:
        asked.append(kw.get("max_cloud"))
        return search(*args, **kw)

    monkeypatch.setattr(stac, "search_items", recorded)
    code, text = _download(catalog, points, tmp_path / "y.parquet", "--max-cloud", "50")
    assert code == 0 and "found 2 granules, 1 holding points" in text, text
    assert asked == [None]  # applied to the items found, not sent to CMR-STAC
    assert pd.read_parquet(tmp_path / "y.parquet")["granule"].tolist() == [A, A]


# ---------------------------------------------------------------------------- downloads
class _Server(http.server.ThreadingHTTPServer):
    status = 200  # answer every request with this status when it is not 200
    login = ("alice", "secret")
    requests: list[tuple[str, str, str]]  # (host, path, Authorization)


class _Handler(http.server.SimpleHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        host = self.headers.get("Host", "").split(":")[0]
        self.server.requests.append((host, self.path, self.headers.get("Authorization", "")))
        port = self.server.server_address[1]
        if self.server.status != 200:
            self.send_error(self.server.status)
            return
        if self.path.startswith("/redirect/"):  # a login round trip through the "URS" host
            name = self.path.split("/")[-1]
            self.send_response(302)
            self.send_header("Location", f"http://localhost:{port}/oauth?to={name}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path.startswith("/oauth"):
            user, pw = self.server.login
            want = "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()
            if self.headers.get("Authorization") != want:
                self.send_error(401)
                return
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{port}/{self.path.split('=')[-1]}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()


@pytest.fixture()
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[_Server]:
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))  # not the user's own
    monkeypatch.delenv("EARTHDATA_TOKEN", raising=False)
    root = tmp_path / "served"
    root.mkdir()
    handler = lambda *a: _Handler(*a, directory=str(root))  # noqa: E731
    srv = _Server(("127.0.0.1", 0), handler)
    srv.requests = []
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join()


def _served_catalog(tmp_path: Path, srv: _Server, prefix: str = "") -> Path:
    base = f"http://127.0.0.1:{srv.server_address[1]}{prefix}"
    catalog = _catalog(tmp_path / "remote", base)
    for f in (tmp_path / "remote" / "files").iterdir():
        f.rename(tmp_path / "served" / f.name)
    return catalog


def test_download_cache_and_token(tmp_path: Path, server: _Server,
                                  monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    catalog = _served_catalog(tmp_path, server)
    points = _points(tmp_path / "points.csv")
    out = tmp_path / "out" / "spectra.parquet"
    monkeypatch.setenv("EARTHDATA_TOKEN", "tok123")
    # the token goes to NASA Earthdata hosts only: not to this server...
    code, text = _download(catalog, points, out, "--cache", str(tmp_path / "elsewhere"))
    assert code == 0, text
    assert server.requests and {a for _, _, a in server.requests} == {""}
    server.requests.clear()
    # ... unless it is one
    monkeypatch.setattr(fetch_mod, "EARTHDATA_DOMAINS", ("127.0.0.1",))
    code, text = _download(catalog, points, out)
    assert code == 0, text and "3 spectra of 2 points" in text
    got = sorted(p for _, p, _ in server.requests)
    assert got == sorted(f"/{n}.nc" for n in (A, A.replace("RFL", "MASK"), B))
    assert {a for _, _, a in server.requests} == {"Bearer tok123"}
    cache = tmp_path / "out" / "emit-cache"
    assert sorted(f.name for f in cache.iterdir()) == sorted(got_name[1:] for got_name in got)
    first = pd.read_parquet(out)
    server.requests.clear()
    code, text = _download(catalog, points, out)  # a rerun: everything from the cache
    assert code == 0, text
    assert server.requests == []
    pd.testing.assert_frame_equal(pd.read_parquet(out), first)


def test_download_refused_and_netrc_login(tmp_path: Path, server: _Server,
                                          monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    points = _points(tmp_path / "points.csv")
    catalog = _served_catalog(tmp_path, server, "/redirect")
    server.status = 401
    code, text = _download(catalog, points, tmp_path / "s.parquet")
    assert code == 2 and "Traceback" not in text and len(text.strip().splitlines()) == 1
    assert "HTTP 401" in text and "EARTHDATA_TOKEN" in text and "~/.netrc" in text
    assert not (tmp_path / "s.parquet").exists()
    # the netrc login goes to the login host the download redirects to (here "localhost")
    server.status = 200
    server.requests.clear()
    netrc = tmp_path / "netrc"
    netrc.write_text("machine localhost login alice password secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setattr(fetch_mod, "URS_HOST", "localhost")
    code, text = _download(catalog, points, tmp_path / "s.parquet")
    assert code == 0, text
    logins = [(h, a) for h, p, a in server.requests if p.startswith("/oauth")]
    assert len(logins) == 3 and all(h == "localhost" and a.startswith("Basic ") for h, a in logins)
    assert all(a == "" for h, p, a in server.requests if not p.startswith("/oauth"))
    # a wrong password: the login host answers 401 -> the same one line
    server.login = ("alice", "other")
    code, text = _download(catalog, points, tmp_path / "t.parquet", "--cache",
                           str(tmp_path / "fresh"))  # fmt: skip
    assert code == 2 and "EARTHDATA_TOKEN" in text and len(text.strip().splitlines()) == 1


def test_glt_cells_of_the_points() -> None:
    """The points sit where the test means them to (guards the catalog's geometry)."""
    gx, gy = glt()
    assert (gy[3, 2] - 1, gx[3, 2] - 1) == CLOUDY and gx[2, 2] == 0
    assert (gy[0, 0] - 1, gx[0, 0] - 1) != CLOUDY and (gy[1, 5] - 1, gx[1, 5] - 1) != CLOUDY


def test_info_of_a_spectra_table(tmp_path: Path) -> None:
    """Known counts: 21 bands 400-2400 nm, of which 1400, 1800 and 1900 nm lie in the
    water-vapour ranges and 500 nm is flagged bad: 17 good; one gap among 4 x 17 values."""
    wl = np.arange(400.0, 2401.0, 100.0)
    values = np.tile(np.linspace(0.1, 0.5, wl.size, dtype=np.float32), (4, 1))
    values[3, 2] = np.nan  # 600 nm, a good band
    meta = pd.DataFrame({
        "sample_id": ["p1", "p1", "p2", "p3"], "label": ["corn", "corn", "wheat", None],
        "country": ["FRA", "FRA", "FRA", "BEL"],
        "date": pd.to_datetime(["2023-07-01", "2023-08-15", "2023-07-01", "2023-07-01"]),
        "granule": ["g1", "g2", "g1", "g1"],
    })  # fmt: skip
    good = wl != 500
    path = write_spectra_table(Spectra(values, wl, good=good, meta=meta), tmp_path / "s.parquet")
    run = CliRunner().invoke
    res = run(cli, ["info", str(path), "--plot", str(tmp_path / "s.png")])
    assert res.exit_code == 0, res.output
    out = res.output
    assert "kind: spectra (EMIT), 4 spectra of 3 points" in out
    assert "bands (21): 400–2400 nm, 17 good" in out
    assert "dates: 2023-07-01 … 2023-08-15 (2 days)" in out and "granules: 2" in out
    assert f"missing values (good bands): {100 / 68:.1f} %; 1 spectra with gaps" in out
    assert "points per class: corn 1, wheat 1, <unlabelled> 1" in out
    assert (tmp_path / "s.png").stat().st_size > 10_000
    res = run(cli, ["info", str(path), "--json", "--where", "country=FRA"])
    assert res.exit_code == 0, res.output
    desc = json.loads(res.output)
    assert desc["where"]["spectra_kept"] == 3 and desc["n_points"] == 2
    assert desc["class_counts"]["table"] == {"FRA": {"corn": 2, "wheat": 1, "total": 3}}
    res = run(cli, ["info", str(path), "--group-by", "farm"])
    assert res.exit_code == 2 and "no column 'farm' in the spectra table" in res.output
