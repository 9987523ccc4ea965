"""`prefdata push`: the staged folder is exactly what a Hub dataset repo needs, and the upload goes
through the real huggingface_hub client to a local server that speaks the Hub's HTTP API."""

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import polars as pl
import pytest
import yaml

from conftest import DPO_DEMO, run_cli
from prefdata.errors import PrefdataError
from prefdata.io import read_dataset, write_table
from prefdata.publish import push, stage_upload


class FakeHub(BaseHTTPRequestHandler):
    """Just enough of the Hub API for create_repo + upload_folder: every file is a 'regular' upload."""

    received: dict = {}
    calls: list = []

    def log_message(self, *args):  # keep test output clean
        pass

    @property
    def base(self) -> str:
        return f"http://{self.headers['Host']}"

    def _reply(self, body: dict, status: int = 200):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.calls.append((self.path, self.headers.get("Authorization")))
        if self.path.startswith("/api/repos/create"):
            request = json.loads(body)
            return self._reply({"url": f"{self.base}/datasets/{request.get('organization')}/{request['name']}"})
        if self.path.startswith("/api/validate-yaml"):  # the Hub checks the card's metadata block
            content = json.loads(body)["content"]
            try:
                meta = yaml.safe_load(content.split("---\n")[1]) if content.startswith("---\n") else {}
                ok = isinstance(meta, dict) and all("data_files" in c for c in meta.get("configs", []))
            except yaml.YAMLError:
                ok = False
            return self._reply({"errors": [] if ok else [{"message": "bad metadata"}], "warnings": []},
                               200 if ok else 400)
        if "/preupload/" in self.path:
            files = json.loads(body)["files"]
            return self._reply({"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                          for f in files]})
        if "/commit/" in self.path:
            for line in body.decode().splitlines():
                item = json.loads(line)
                if item["key"] == "file":
                    self.received[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
            return self._reply({"commitUrl": f"{self.base}/datasets/org/name/commit/" + "a" * 40,
                                "commitOid": "a" * 40})
        return self._reply({"error": f"unexpected {self.path}"}, 404)


@pytest.fixture
def hub():
    FakeHub.received, FakeHub.calls = {}, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture
def dataset_dir(tmp_path):
    frame = read_dataset(DPO_DEMO).frame
    folder = tmp_path / "ds"
    split = frame.with_columns(pl.when(pl.int_range(pl.len()) % 5 == 0).then(pl.lit("test"))
                               .otherwise(pl.lit("train")).alias("split"))
    write_table(split, folder / "data.parquet")
    (folder / "README.md").write_text("---\ntags: [dpo]\n---\n# demo\n\nA card.\n")
    (folder / "validation.json").write_text('{"passed": true}')
    return folder, frame


def test_staged_folder_loads_with_load_dataset_and_has_valid_card(dataset_dir, tmp_path):
    import datasets
    from huggingface_hub import DatasetCard

    folder, frame = dataset_dir
    staged = stage_upload(folder, tmp_path / "staged")
    loaded = datasets.load_dataset(str(staged))
    assert set(loaded) == {"train", "test"}
    assert loaded["train"].num_rows + loaded["test"].num_rows == frame.height
    assert loaded["test"][0]["chosen"][0]["role"] == "assistant"
    card = DatasetCard.load(staged / "README.md")
    assert card.data.tags == ["dpo"] and {d["split"] for d in card.data.configs[0]["data_files"]} == {"train", "test"}
    assert (staged / "validation.json").is_file()


def test_push_uploads_every_staged_file_with_the_token_from_the_environment(dataset_dir, hub, tmp_path, monkeypatch):
    folder, _ = dataset_dir
    monkeypatch.setenv("HF_TOKEN", "hf_test_secret")
    url = push(folder, "org/name", endpoint=hub)
    assert url.endswith("a" * 40)
    staged = stage_upload(folder, tmp_path / "expected")
    expected = {str(p.relative_to(staged)): p.read_bytes() for p in staged.rglob("*") if p.is_file()}
    assert FakeHub.received == expected
    assert all(auth == "Bearer hf_test_secret" for _, auth in FakeHub.calls)


def test_push_needs_a_token_and_a_repo_id(dataset_dir, monkeypatch):
    folder, _ = dataset_dir
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(PrefdataError, match="HF_TOKEN"):
        push(folder, "org/name")
    with pytest.raises(PrefdataError, match="ORG/NAME"):
        push(folder, "not a repo")


def test_stage_only_never_deletes_the_dataset_or_unrelated_files(dataset_dir, tmp_path):
    folder, _ = dataset_dir
    before = sorted(p.name for p in folder.iterdir())
    for target in (folder, folder / "staged", tmp_path):
        done = run_cli("push", folder, "--repo-id", "a/b", "--stage-only", target)
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "dataset folder" in done.stderr
    assert sorted(p.name for p in folder.iterdir()) == before and not (folder / "staged").exists()
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(PrefdataError, match="not empty"):
        stage_upload(folder, other)
    assert (other / "keep.txt").read_text() == "mine"
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(PrefdataError, match="not a folder"):
        stage_upload(folder, tmp_path / "file.txt")


def test_staging_again_into_the_same_target_replaces_it(dataset_dir, tmp_path):
    folder, _ = dataset_dir
    target = tmp_path / "staged"
    first = run_cli("push", folder, "--repo-id", "a/b", "--stage-only", target)
    files = sorted(str(p.relative_to(target)) for p in target.rglob("*"))
    again = run_cli("push", folder, "--repo-id", "a/b", "--stage-only", target)
    assert first.returncode == again.returncode == 0, again.stderr
    assert sorted(str(p.relative_to(target)) for p in target.rglob("*")) == files and "README.md" in files
    (tmp_path / "empty").mkdir()
    assert stage_upload(folder, tmp_path / "empty") == tmp_path / "empty"


def test_push_cli_reports_a_failed_upload_in_one_line(dataset_dir, hub):
    folder, _ = dataset_dir
    done = run_cli("push", folder, "--repo-id", "org/name", env={"HF_TOKEN": "x", "HF_ENDPOINT": hub + "/broken"})
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1 and "upload" in done.stderr


def test_the_stamp_still_holds_for_the_uploaded_copy(dataset_dir, tmp_path):
    from prefdata.validators.api import validate
    from prefdata.validators.stamp import check_stamp

    folder, _ = dataset_dir
    (folder / "validation.json").unlink()
    report = validate(folder, stamp=True)
    staged = stage_upload(folder, tmp_path / "staged")
    # the fixture splits by row number, so 2 repeated prompts land in both splits: a failed stamp, which
    # must travel as faithfully as a passing one
    assert not report.passed and [c.name for c in report.checks if c.severity == "error" and not c.passed] == [
        "split_leakage"]
    assert check_stamp(staged).state == check_stamp(folder).state == "failed"
