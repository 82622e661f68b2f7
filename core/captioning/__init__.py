"""The trainable captioner (issue 6): data, vocabulary, training, decoding, evaluation, service, CLI.

    datasets.py  Flickr8k / COCO / CSV / library (catalog) / shapes loaders -> CaptionSet (+ problems
                 naming file and line); split_by_image (seeded, never by caption)
    vocab.py     tokenizer + vocabulary (min frequency, <pad> <bos> <eos> <unk>, max length)
    model.py     feature extraction (frozen encoder, once per image), caption token tensors
                 (pair_tensors, used by training and evaluation) and a loaded TrainedModel
    train.py     TrainConfig + train(): teacher forcing, CE with label smoothing, AdamW + warmup/cosine,
                 clipping, early stopping, best/last checkpoints, resume, cancel, AMP on CUDA
    decode.py    greedy and beam search (width, GNMT length penalty)
    evaluate.py  sacrebleu BLEU-1..4 over all references, token accuracy, loss
    service.py   best_captioner(): trained checkpoint, else the backend's description; caption_files,
                 save_captions (catalog), TrainingJob for the page
    cli.py       `python -m core caption train|eval|predict`

The model itself (encoders, Transformer / LSTM decoders, checkpoint format) is models/captioner.py.

Speed trade-off: the encoder is frozen, so without augmentation its output is computed once per
image and cached (in memory and in `<run>/features/`); the loop then trains only the decoder and
runs hundreds of samples/s on a CPU. `augment=True` changes the pixels every step, so the encoder
runs inside the loop (about 10-50x slower on CPU). `finetune=True` caches the frozen trunk and
trains the encoder's last block on top of it.
"""
