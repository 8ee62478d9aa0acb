#!/usr/bin/env python3
"""whisper_standin.py -- a STAND-IN for a Whisper-class transcription server.

No Whisper model can be fetched on the machines tolk is tested on, so this
server speaks the protocol such servers speak (whisper.cpp's server,
faster-whisper servers, LocalAI, vLLM: the OpenAI transcription API) and
recognises what it receives with real pocketsphinx (one warm decoder of
Debian's python3-pocketsphinx, the posted WAV as one utterance), so real
speech crosses the protocol. It is a stand-in,
not a recogniser tolk ships.

    POST /v1/audio/transcriptions   multipart/form-data: file (a WAV), model,
                                    language, prompt, response_format=json
        -> 200 {"text": "..."}
        -> 400 {"error": {...}} for a form that lacks file or model, or a
           response_format other than json
    POST /standin/mode   JSON {"delay_ms": n, "status": code, "drop": bool}
                         how the next answers behave (a slow, failing or
                         dropping server); {} is the normal behaviour
    GET  /standin/log    JSON list of every transcription request:
                         {"received_ms", "answered_ms" (CLOCK_MONOTONIC ms,
                         the clock tolk and the tests use), "text",
                         "language", "model", "prompt", "samples", "status"}

usage: whisper_standin.py --port PORT [--model-dir DIR]
"""
import argparse
import json
import os
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from pocketsphinx.pocketsphinx import Decoder

MODEL_DIR = "/usr/share/pocketsphinx/model/en-us"
BODY_MAX = 8 * 1024 * 1024  # 30 s of 16 kHz audio is under 1 MB

mode = {}
log = []
lock = threading.Lock()


def now_ms():
    return int(time.clock_gettime(time.CLOCK_MONOTONIC) * 1000)


def parse_multipart(body, content_type):
    """The form's parts as {name: bytes}; None when it is not multipart."""
    if not content_type.startswith("multipart/form-data"):
        return None
    boundary = None
    for piece in content_type.split(";"):
        piece = piece.strip()
        if piece.startswith("boundary="):
            boundary = piece[len("boundary="):].strip('"')
    if not boundary:
        return None
    parts = {}
    for chunk in body.split(b"--" + boundary.encode())[1:]:
        if chunk.startswith(b"--"):
            break
        head, sep, value = chunk.partition(b"\r\n\r\n")
        if not sep:
            return None
        name = None
        for line in head.decode("latin-1").split("\r\n"):
            if line.lower().startswith("content-disposition:"):
                for attr in line.split(";"):
                    attr = attr.strip()
                    if attr.startswith("name="):
                        name = attr[5:].strip('"')
        if name is not None:
            parts[name] = value[:-2] if value.endswith(b"\r\n") else value
    return parts


decoder = None  # one warm decoder: loading the model per request took seconds
decoder_lock = threading.Lock()


def wav_pcm(wav):
    """The 16-bit PCM of a WAV's data chunk (b"" when there is none)."""
    pos = 12
    while pos + 8 <= len(wav):
        tag, size = wav[pos:pos + 4], struct.unpack("<I", wav[pos + 4:pos + 8])[0]
        if tag == b"data":
            return wav[pos + 8:pos + 8 + size]
        pos += 8 + size + (size & 1)
    return b""


def recognise(wav, model_dir):
    """pocketsphinx's words for a WAV, decoded as one utterance."""
    global decoder
    pcm = wav_pcm(wav)
    with decoder_lock:
        if decoder is None:
            config = Decoder.default_config()
            config.set_string("-hmm", model_dir + "/en-us")
            config.set_string("-lm", model_dir + "/en-us.lm.bin")
            config.set_string("-dict", model_dir + "/cmudict-en-us.dict")
            config.set_string("-logfn", "/dev/null")
            decoder = Decoder(config)
        decoder.start_utt()
        decoder.process_raw(pcm, False, True)
        decoder.end_utt()
        hyp = decoder.hyp()
    return " ".join(hyp.hypstr.split()) if hyp else ""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass  # the test reads /standin/log; an access log would only fill its output

    def reply(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # tolk gave up on this utterance (its timeout): that is the behaviour

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n < 0 or n > BODY_MAX:
            return None
        return self.rfile.read(n)

    def do_GET(self):
        if self.path == "/standin/log":
            with lock:
                body = [dict(e) for e in log]
            self.reply(200, body)
        else:
            self.reply(404, {"error": {"message": "not found"}})

    def do_POST(self):
        received = now_ms()
        body = self.read_body()
        if body is None:
            self.reply(413, {"error": {"message": "request too large"}})
            return
        if self.path == "/standin/mode":
            with lock:
                mode.clear()
                mode.update(json.loads(body or b"{}"))
            self.reply(200, dict(mode))
            return
        if self.path != "/v1/audio/transcriptions":
            self.reply(404, {"error": {"message": "not found"}})
            return
        with lock:
            now = dict(mode)
        form = parse_multipart(body, self.headers.get("Content-Type", ""))
        entry = {"received_ms": received, "status": 0}
        with lock:
            log.append(entry)  # at once: a test sees a request still unanswered
        if not form or "file" not in form or "model" not in form:
            entry["status"] = 400
            self.reply(400, {"error": {"message": "file and model are required"}})
        elif form.get("response_format", b"json") != b"json":
            entry["status"] = 400
            self.reply(400, {"error": {"message": "only response_format=json is served"}})
        else:
            wav = form["file"]
            entry.update(language=form.get("language", b"").decode(),
                         model=form["model"].decode(), prompt=form.get("prompt", b"").decode(),
                         samples=max(0, (len(wav) - 44) // 2))
            failing = now.get("drop") or now.get("status", 200) != 200
            text = "" if failing else recognise(wav, self.server.model_dir)
            delay = now.get("delay_ms", 0) / 1000.0 - (now_ms() - received) / 1000.0
            if delay > 0:
                time.sleep(delay)
            entry["text"] = text
            if now.get("drop"):
                entry["status"] = -1
                self.close_connection = True
                self.connection.shutdown(2)
            elif now.get("status", 200) != 200:
                entry["status"] = now["status"]
                self.reply(now["status"], {"error": {"message": "stand-in told to fail"}})
            else:
                entry["status"] = 200
                self.reply(200, {"text": text})
        with lock:
            entry["answered_ms"] = now_ms()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--model-dir", default=MODEL_DIR)
    args = ap.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.model_dir = args.model_dir
    sys.stderr.write("whisper-standin: listening on 127.0.0.1:%d\n" % args.port)
    sys.stderr.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
