"""Generate: images from text with a trained GAN (Playground) and training it (Train)."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import streamlit as st

from core.gan import GanError
from core.gan.generate import generate_from_text, interpolate, load_generator, make_grid, png_bytes
from core.gan.checkpoints import generator_choices, usage
from core.gan.job import TrainSource, start_training_job
from core.gan.runs import latest_sample, read_log, run_dir_for
from core.gan.train import GanConfig
from core.settings import Settings
from ui.router import ensure_router

ensure_router()


@st.cache_resource(show_spinner="Loading the embedding backend...")
def get_backend():
    from models.registry import create_backend

    return create_backend(Settings())


@st.cache_resource(max_entries=4, show_spinner="Loading the generator...")
def get_generator(path: str, mtime_ns: int, model_id: str):
    # mtime in the key: a checkpoint rewritten by a resumed run is reloaded, not served stale.
    return load_generator(Path(path), model_id=model_id)


@st.cache_resource
def training_jobs() -> dict:
    """run name -> TrainingJob; one per process so a page rerun finds the running job."""
    return {}


def _zip_pngs(images) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i, arr in enumerate(images):
            zf.writestr(f"generated_{i:03d}.png", png_bytes(Image.fromarray(arr, "RGB")))
    return buf.getvalue()


def _show_images(images, ncol: int, key: str) -> None:
    grid = make_grid(images, ncol=ncol)
    st.image(grid, caption=f"{len(images)} images", width=min(1024, grid.width * 3))
    c1, c2 = st.columns(2)
    c1.download_button("Download grid (PNG)", png_bytes(grid), file_name="grid.png", mime="image/png", key=f"{key}_dl_grid")
    c2.download_button("Download all (ZIP of PNGs)", _zip_pngs(images), file_name="generated.zip", mime="application/zip", key=f"{key}_dl_zip")


settings = Settings()
st.title("Generate")
st.caption("A small text-conditioned GAN trained on your own photos. It learns from photo embeddings, so any folder can train it; "
           "quality depends on how many photos and how long it trained.")
playground, train_tab = st.tabs(["Playground", "Train"])

with playground:
    labels = dict(generator_choices(settings.data_dir))  # newest run's latest generator first
    if not labels:
        st.info("No trained generator yet. Train one in the Train tab (or `python -m core gan train`).")
    else:
        if st.session_state.get("gen_ckpt") not in labels:
            st.session_state.pop("gen_ckpt", None)  # a pruned or renamed checkpoint: fall back to the newest
        choice = st.selectbox("Checkpoint", list(labels), key="gen_ckpt")
        text = st.text_input("Text", key="gen_text", placeholder="a small red circle in the top left")
        c1, c2, c3 = st.columns(3)
        seed = int(c1.number_input("Seed", 0, 2**31 - 1, 0, key="gen_seed"))
        n = int(c2.slider("Images", 1, 16, 8, key="gen_n"))
        trunc = c3.slider("Truncation (0 = off)", 0.0, 2.0, 0.0, 0.1, key="gen_trunc",
                          help="Redraw noise values beyond +-t: lower gives cleaner, less varied images")
        with st.expander("Interpolate between two texts"):
            text_b = st.text_input("Second text", key="gen_text_b")
            steps = int(st.slider("Steps", 2, 16, 8, key="gen_steps"))
        go, go_interp = st.columns(2)
        clicked = go.button("Generate", key="gen_go", type="primary")
        clicked_interp = go_interp.button("Interpolate", key="gen_interp")
        if clicked or clicked_interp:
            try:
                backend, _ = get_backend()
                path = labels[choice]
                loaded = get_generator(str(path), path.stat().st_mtime_ns, backend.model_id)
                truncation = trunc or None
                if clicked_interp:
                    images = interpolate(loaded, backend, text, text_b, steps=steps, seed=seed, truncation=truncation)
                    ncol = len(images)
                else:
                    images = generate_from_text(loaded, backend, [text], n_per=n, seed=seed, truncation=truncation)
                    ncol = min(8, n)
                st.session_state["gen_result"] = (images, ncol)
            except GanError as exc:
                st.session_state.pop("gen_result", None)
                st.error(str(exc))
        if "gen_result" in st.session_state:
            images, ncol = st.session_state["gen_result"]
            _show_images(images, ncol, key="gen")

with train_tab:
    kind = st.radio("Train on", ["Library class", "Folder", "Shapes demo"], horizontal=True, key="train_kind")
    source = None
    if kind == "Library class":
        classes: dict = {}
        if settings.catalog_url or settings.catalog_path.is_file():
            from core.catalog import open_catalog

            classes = open_catalog(settings).classes()
        if classes:
            cls = st.selectbox("Class", [c for c in classes if c], format_func=lambda c: f"{c} ({classes[c]} photos)", key="train_class")
            source = TrainSource("library", cls) if cls else None
        else:
            st.info("The library has no classes yet; ingest a folder of class subfolders, or train on a folder.")
    elif kind == "Folder":
        folder = st.text_input("Folder of photos", key="train_folder")
        source = TrainSource("folder", folder.strip()) if folder.strip() else None
    else:
        n_shapes = int(st.number_input("Shapes images", 64, 20000, 1800, step=64, key="train_shapes"))
        source = TrainSource("shapes", str(n_shapes))
    c1, c2, c3 = st.columns(3)
    default_name = (Path(source.value).name if source and source.kind == "folder" else source.value if source and source.kind == "library" else "shapes") or "run"
    # The run name follows the chosen source until the user types their own.
    if st.session_state.get("train_run") in (None, "", st.session_state.get("train_run_default")):
        st.session_state["train_run"] = default_name
    st.session_state["train_run_default"] = default_name
    run_name = c1.text_input("Run name", key="train_run")
    resolution = int(c2.selectbox("Resolution", [32, 64, 128], index=1, key="train_res"))
    preset = c3.selectbox("Model size", ["tiny", "compact", "small", "base"], index=2, key="train_preset")
    c4, c5, c6 = st.columns(3)
    epochs = int(c4.number_input("Epochs", 1, 1000, 20, key="train_epochs"))
    minutes = float(c5.number_input("Time limit (minutes, 0 = none)", 0.0, 1440.0, 0.0, key="train_minutes"))
    resume = c6.checkbox("Resume this run", key="train_resume")
    c7, c8, c9 = st.columns(3)
    batch_size = int(c9.number_input("Batch size", 2, 1024, GanConfig.batch_size, key="train_batch",
                                     help="Photos per step; lowered automatically to the number of photos when there are fewer (a small class)."))
    c10, c11 = st.columns(2)
    keep_every = int(c10.number_input("Keep every Nth epoch's checkpoint", 1, 10000, GanConfig.keep_every, key="train_keep_every",
                                      help="The latest and the best generator are always kept; others are pruned."))
    budget_mb = float(c11.number_input("Checkpoint disk budget (MB)", 10.0, 100000.0, GanConfig.checkpoint_budget_mb, step=64.0, key="train_budget",
                                       help="Beyond it the oldest kept epochs are pruned (never the latest or the best)."))
    recon = float(c7.number_input("Paired L1 weight (0 = pure GAN)", 0.0, 100.0, float(GanConfig.recon), key="train_recon",
                                  help="Pulls each sample towards the photo its condition came from: follows the text sooner, varies less."))
    mode_seeking = float(c8.number_input("Variety (mode seeking, 0 = off)", 0.0, 1.0, float(GanConfig.mode_seeking), step=0.01, format="%.3f", key="train_mode_seeking",
                                         help="Rewards samples of one text that differ with the seed; 0.01 is a good start. Slower, noisier images."))
    prompts = st.text_area("Fixed prompts for the per-epoch grid (one per line, optional)", key="train_prompts")

    jobs = training_jobs()
    job = jobs.get(run_name)
    b1, b2 = st.columns(2)
    if b1.button("Start training", key="train_start", disabled=bool(job and job.running) or source is None, type="primary"):
        try:
            backend, _ = get_backend()
            run_dir = run_dir_for(settings.data_dir, run_name)
            config = GanConfig(resolution=resolution, preset=preset, epochs=epochs, max_seconds=minutes * 60 or None, device=settings.device, recon=recon,
                               mode_seeking=mode_seeking, batch_size=batch_size, keep_every=keep_every, checkpoint_budget_mb=budget_mb)
            catalog = None
            if source.kind == "library":
                from core.catalog import open_catalog

                catalog = open_catalog(settings)
            jobs[run_name] = job = start_training_job(source, backend, config, run_dir, resume=resume,
                                                      prompts=[p for p in prompts.splitlines() if p.strip()] or None,
                                                      catalog=catalog, library_dir=settings.library_dir)
        except GanError as exc:
            st.error(str(exc))
        else:
            st.rerun()  # redraw the buttons: Start off, Stop on
    if b2.button("Stop", key="train_stop", disabled=not (job and job.running)):
        job.stop()
        st.info("Stopping after the current step; a checkpoint is written so the run can be resumed.")
    # The buttons above are drawn once per page run; the status below refreshes on its own and
    # reruns the page when the job ends, so Start comes back and Stop goes grey.
    st.session_state["train_shown_running"] = bool(job and job.running)

    @st.fragment(run_every=2.0)
    def live_status(run_name: str) -> None:
        job = training_jobs().get(run_name)
        try:
            run_dir = run_dir_for(settings.data_dir, run_name)
        except GanError:
            return
        if job is not None and not job.running and st.session_state.get("train_shown_running"):
            st.session_state["train_shown_running"] = False
            st.rerun()
        if job is not None:
            p = job.progress
            if job.error:
                st.error(job.error)
            elif job.running:
                total = max(1, int(p.get("total") or 1))
                st.progress(min(1.0, p.get("done", 0) / total), text=f"{p.get('stage', '')}: {p.get('done', 0)} / {p.get('total', 0)}")
            elif job.result is not None:
                r = job.result
                st.success(f"{'Finished' if r.finished else 'Stopped'} at step {r.step} ({r.epoch} epochs, {r.steps_per_s:.2f} steps/s, batch size {r.batch_size}).")
                if r.skipped:
                    st.warning(f"{len(r.skipped)} files were skipped as unreadable:")
                    st.dataframe([{"file": a, "reason": b} for a, b in r.skipped], key=None)
        log = read_log(run_dir)
        if log:
            import pandas as pd

            df = pd.DataFrame(log).set_index("step")
            st.line_chart(df[[c for c in ("loss_d", "loss_g") if c in df]], height=220)
        sample = latest_sample(run_dir)
        if sample is not None:
            st.image(str(sample), caption=f"{run_name}: {sample.name} (rows: prompts, columns: fixed noise)")
        used = usage(run_dir)
        if used.files:
            st.caption(f"Latest checkpoint: {used.latest} · best: {used.best or '—'}")
            st.caption(used.summary())

    live_status(run_name)
