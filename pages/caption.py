"""Caption: caption uploaded or library photos with the best available captioner; train one."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.captioning.datasets import DATASET_KINDS, load_dataset
from core.captioning.evaluate import evaluate_split
from core.captioning.service import (CaptionOutcome, best_captioner, caption_files, captioner_dir, list_checkpoints,
                                     save_captions, start_training)
from core.captioning.train import TrainConfig
from core.images import IMAGE_EXTENSIONS
from core.settings import Settings
from core.uploads import safe_component
from ui.resources import services_or_stop
from ui.router import ensure_router

ensure_router()

AUTO = "best available"
TAGS = "backend description (no trained captioner)"


@st.cache_resource(show_spinner="Loading the captioner...")
def get_captioner(data_dir: str, choice: str, stamp: float, _backend):
    """Built once per (data dir, choice, checkpoint mtime): a retrained checkpoint reloads."""
    settings = Settings(data_dir=Path(data_dir))
    if choice == TAGS:
        from core.captioning.service import BackendCaptioner

        return BackendCaptioner(_backend, why="chosen on this page")
    return best_captioner(settings, _backend, checkpoint=None if choice == AUTO else Path(choice))


@st.cache_resource
def training_jobs() -> dict:
    """Background training jobs by run folder, shared across reruns and sessions."""
    return {}


services = services_or_stop()
settings = services.settings
st.title("Caption")
tab_caption, tab_train = st.tabs(["Caption photos", "Train"])

with tab_caption:
    checkpoints = list_checkpoints(settings)
    choice = st.selectbox("Captioner", [AUTO, *[str(p) for p in checkpoints], TAGS], key="caption_choice",
                          help="Best available: the newest trained checkpoint, else the tag-based description.")
    uploads = st.file_uploader("Photos", type=sorted(e.lstrip(".") for e in IMAGE_EXTENSIONS),
                               accept_multiple_files=True, key="caption_upload")
    library = {p.path: p for p in services.catalog.list_photos(limit=5000)}
    picked = st.multiselect("Or pick from the library", sorted(library), key="caption_library_pick")
    if st.button("Caption", key="caption_run", type="primary", disabled=not (uploads or picked)):
        stamp = max((p.stat().st_mtime for p in checkpoints), default=0.0)
        captioner = get_captioner(str(settings.data_dir), choice, stamp, services.backend)
        files = [(u.name, u.getvalue()) for u in uploads or []]
        unreadable = []
        for path in picked:
            try:
                files.append((path, Path(path).read_bytes()))
            except OSError as exc:
                unreadable.append(CaptionOutcome(path, error=f"{path}: cannot read ({exc.strerror or exc})"))
        with st.spinner(f"Captioning {len(files)} photo(s)..."):
            results = caption_files(files, captioner, max_pixels=settings.max_image_pixels)
        st.session_state["caption_results"] = results + unreadable
        st.session_state["caption_captioner"] = (captioner.name, captioner.why)

    results = st.session_state.get("caption_results") or []
    if results:
        name, why = st.session_state["caption_captioner"]
        st.text(f"Captioner: {name}\nWhy: {why}")
        errors = [o.error for o in results if o.error]
        if errors:
            st.warning(f"{len(errors)} file(s) could not be captioned and were skipped:")
            st.code("\n".join(errors), language=None)
        cols = st.columns(3)
        for i, o in enumerate(o for o in results if not o.error):
            with cols[i % 3]:
                st.image(o.image, width="stretch")
                st.text(o.caption)  # caption text is data: plain text, never markdown or HTML
                st.text(f"{o.name} - by {o.captioner}")
        if st.button("Save captions to the library", key="caption_save"):
            added = save_captions(settings, results, services)
            st.success(f"Saved {added} new caption(s) into the library.")

with tab_train:
    kind = st.selectbox("Dataset", DATASET_KINDS, key="train_dataset")
    c1, c2 = st.columns(2)
    path = c1.text_input("Caption file (CSV / Flickr8k.token.txt / COCO JSON)", key="train_path",
                         disabled=kind in ("shapes", "library"))
    image_dir = c2.text_input("Image folder", key="train_images", disabled=kind in ("shapes", "library"))
    n_images = c1.number_input("Shapes: images", 60, 20000, 1200, step=60, key="train_n", disabled=kind != "shapes")
    run = c2.text_input("Run name", "default", key="train_run")
    h1, h2, h3, h4 = st.columns(4)
    decoder = h1.selectbox("Decoder", ["transformer", "lstm"], key="train_decoder")
    preset = h2.selectbox("Size", ["nano", "small", "base"], index=1, key="train_preset")
    epochs = h3.number_input("Epochs", 1, 200, 10, key="train_epochs")
    lr = h4.number_input("Learning rate", 1e-5, 1e-1, 1e-3, format="%.5f", key="train_lr")
    image_size = h1.selectbox("Image size", [64, 128, 224], index=1, key="train_image_size")
    batch = h2.number_input("Batch size", 4, 512, 64, key="train_batch")
    smoothing = h3.number_input("Label smoothing", 0.0, 0.5, 0.0, key="train_smoothing")
    patience = h4.number_input("Early-stop patience", 1, 50, 4, key="train_patience")
    augment = h1.checkbox("Augment (slow on CPU)", key="train_augment")
    finetune = h2.checkbox("Fine-tune last encoder block", key="train_finetune")
    resume = h3.checkbox("Resume if possible", True, key="train_resume")

    jobs = training_jobs()
    out_dir = captioner_dir(settings) / safe_component(run.strip(), "default")  # a name, never a path
    job = jobs.get(str(out_dir))
    b1, b2 = st.columns(2)
    if b1.button("Start training", key="train_start", type="primary", disabled=bool(job and job.running)):
        cfg = TrainConfig(decoder=decoder, preset=preset, epochs=int(epochs), lr=float(lr), image_size=int(image_size),
                          batch_size=int(batch), label_smoothing=float(smoothing), patience=int(patience),
                          augment=augment, finetune=finetune, device=settings.device)
        if not resume and (out_dir / "last.pt").is_file():
            (out_dir / "last.pt").unlink()
        source = settings.catalog_target if kind == "library" else (Path(path) if path else None)
        loader = (lambda: load_dataset(kind, path=source,
                                       image_dir=Path(image_dir) if image_dir else None, n=int(n_images)))
        job = jobs[str(out_dir)] = start_training(loader, cfg, out_dir)
    if b2.button("Stop", key="train_stop", disabled=not (job and job.running)):
        job.cancel.set()

    st.subheader("Evaluate a checkpoint")
    e1, e2 = st.columns([3, 1])
    eval_ckpt = e1.selectbox("Checkpoint", [str(p) for p in list_checkpoints(settings)], key="train_eval_ckpt")
    eval_method = e2.radio("Decoding", ["beam", "greedy"], key="train_eval_method", horizontal=True)
    if st.button("Evaluate on the test split (the dataset chosen above)", key="train_eval", disabled=not eval_ckpt):
        source = settings.catalog_target if kind == "library" else (Path(path) if path else None)
        try:
            with st.spinner("Evaluating..."):
                data = load_dataset(kind, path=source, image_dir=Path(image_dir) if image_dir else None, n=int(n_images))
                st.session_state["train_eval_result"] = evaluate_split(Path(eval_ckpt), data, method=eval_method)
        except (ValueError, FileNotFoundError) as exc:
            st.session_state["train_eval_result"] = {"error": str(exc)}
    report = st.session_state.get("train_eval_result")
    if report:
        if "error" in report:
            st.error("Evaluation failed:")
            st.code(report["error"], language=None)
        else:
            m = st.columns(6)
            for col, key in zip(m, ("bleu1", "bleu2", "bleu3", "bleu4", "token_acc", "loss")):
                col.metric(key.replace("_", " ").upper(), f"{report[key]:.3f}")
            st.dataframe([{"image": e["image"], "caption": e["caption"], "first reference": e["references"][0]}
                          for e in report["examples"]], width="stretch")

    @st.fragment(run_every=2.0)
    def live() -> None:
        current = training_jobs().get(str(out_dir))
        if current is None:
            st.text("No training run started in this session for this run name.")
            return
        p = current.progress
        st.text(f"Status: {current.status}" + (f" - {p.get('phase')} {p.get('done')}/{p.get('total')}" if p else ""))
        if current.error:
            st.error("Training failed:")
            st.code(current.error, language=None)
        if current.problems:
            st.warning(f"{len(current.problems)} input problem(s) were skipped:")
            st.code("\n".join(current.problems[:50]), language=None)
        if current.history:
            import pandas as pd

            df = pd.DataFrame(current.history).set_index("epoch")
            st.line_chart(df[["train_loss", "val_loss"]], x_label="epoch", y_label="loss")
            if "val_bleu4" in df:
                st.line_chart(df[["val_bleu4"]], x_label="epoch", y_label="BLEU-4 (validation)")
        if current.result and current.result.best_path:
            st.text(f"Best checkpoint: {current.result.best_path}")

    live()
