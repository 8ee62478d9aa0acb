#!/usr/bin/python3
"""vosk_standin.py -- a STAND-IN for vosk-server (alphacep/vosk-server,
websocket/asr_server.py).

No Vosk model can be fetched on the machines tolk is tested on, so this
server speaks vosk-server's WebSocket protocol exactly and recognises the
audio it receives with real pocketsphinx (Debian's python3-pocketsphinx, the
SWIG API: Decoder, process_raw, hyp), so real speech crosses the protocol.
It is a stand-in, not a recogniser tolk ships. It recognises US English
whatever the path or language it is asked for (one model is installed).

The protocol, as asr_server.py speaks it:
    client -> text   {"config" : {"sample_rate" : 16000, "words" : 1, ...}}
                     (any text containing "config"; no answer)
    client -> binary 16-bit mono PCM at that rate; every message is answered
                     with one text message:
    server -> text   {"partial" : "words so far"} while speech goes on, or
                     {"result" : [{"conf", "end", "start", "word"}...],
                      "text" : "the utterance"} at an endpoint (here:
                     pocketsphinx's voice activity detector hearing the
                     speech stop)
    client -> text   {"eof" : 1} (compared as that exact string): the last
                     final is answered, then the server closes
A text message that is neither fails the connection (vosk-server's
recogniser raises on it): close 1011.

Control (HTTP on --control-port):
    GET /standin/mode?delay_ms=n&drop_after=n&refuse=1
                        delay_ms: every answer waits this long (a slow
                        server); drop_after: a connection is dropped (TCP
                        reset, no close frame) after n partials with words
                        in one utterance; refuse: upgrades are answered 503.
                        No parameters: the normal behaviour.
    GET /standin/log    JSON list of connections: {"path", "config",
                        "messages", "finals" (texts), "partials" (count),
                        "eof", "dropped", "opened_ms", "closed_ms"}

usage: vosk_standin.py --port PORT --control-port PORT [--model-dir DIR]
"""
import argparse
import asyncio
import http
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import websockets
from pocketsphinx.pocketsphinx import Decoder

MODEL_DIR = "/usr/share/pocketsphinx/model/en-us"
RATE = 16000
FRAME_S = 0.01  # pocketsphinx's frame: word times are counted in them

mode = {}
log = []
lock = threading.Lock()
decoders = []  # idle decoders: loading one takes 0.4 s


def now_ms():
    return int(time.clock_gettime(time.CLOCK_MONOTONIC) * 1000)


def new_decoder(model_dir):
    config = Decoder.default_config()
    config.set_string("-hmm", model_dir + "/en-us")
    config.set_string("-lm", model_dir + "/en-us.lm.bin")
    config.set_string("-dict", model_dir + "/cmudict-en-us.dict")
    config.set_string("-logfn", "/dev/null")
    return Decoder(config)


class Recogniser:
    """One connection's recogniser: pocketsphinx's endpointer ends
    utterances, as KaldiRecognizer's does in vosk."""

    def __init__(self, decoder):
        self.d = decoder
        try:
            self.d.end_utt()  # a connection that dropped left its utterance open
        except RuntimeError:
            pass
        self.d.start_stream()
        self.d.start_utt()
        self.samples = 0
        self.utt_start = 0
        self.in_speech = False

    def words(self):
        out = []
        for seg in self.d.seg():
            w = seg.word
            if w.startswith("<") or w.startswith("[") or w == "<sil>":
                continue
            if "(" in w:
                w = w[: w.index("(")]
            out.append({"conf": 1.0,
                        "end": round(self.utt_start / RATE + (seg.end_frame + 1) * FRAME_S, 2),
                        "start": round(self.utt_start / RATE + seg.start_frame * FRAME_S, 2),
                        "word": w})
        return out

    def final(self):
        self.d.end_utt()
        hyp = self.d.hyp()
        text = hyp.hypstr if hyp else ""
        words = self.words()
        self.d.start_utt()
        self.utt_start = self.samples
        self.in_speech = False
        return {"result": words, "text": text} if words else {"text": text}

    def accept(self, pcm):
        """Feed audio; a final when an utterance ended, else None."""
        self.d.process_raw(pcm, False, False)
        self.samples += len(pcm) // 2
        speech = self.d.get_in_speech()
        if speech and not self.in_speech:
            self.in_speech = True
        elif not speech and self.in_speech:
            return self.final()
        return None

    def partial(self):
        hyp = self.d.hyp() if self.in_speech else None
        return {"partial": hyp.hypstr if hyp else ""}


async def recognize(ws, path=None):
    path = path if path is not None else getattr(ws, "path", "/")
    entry = {"path": path, "config": None, "messages": 0, "finals": [], "partials": 0,
             "eof": False, "dropped": False, "opened_ms": now_ms(), "closed_ms": None}
    with lock:
        log.append(entry)
        decoder = decoders.pop() if decoders else None
    loop = asyncio.get_running_loop()
    if decoder is None:
        decoder = await loop.run_in_executor(None, new_decoder, args.model_dir)
    rec = Recogniser(decoder)
    words_in_utt = 0
    try:
        while True:
            message = await ws.recv()
            entry["messages"] += 1
            if isinstance(message, str) and "config" in message:
                entry["config"] = json.loads(message)["config"]
                continue
            if isinstance(message, str) and message == '{"eof" : 1}':
                answer, stop = rec.final(), True
                entry["eof"] = True
            elif isinstance(message, bytes):
                answer, stop = rec.accept(message), False
                if answer is None:
                    answer = rec.partial()
            else:
                await ws.close(1011, "not audio")
                break
            if "partial" in answer and answer["partial"]:
                entry["partials"] += 1
                words_in_utt += 1
                drop = mode.get("drop_after")
                if drop and words_in_utt >= drop:
                    entry["dropped"] = True
                    ws.transport.abort()
                    break
            if "text" in answer:
                words_in_utt = 0
                if answer["text"]:
                    entry["finals"].append(answer["text"])
            delay = mode.get("delay_ms", 0)
            if delay:
                await asyncio.sleep(delay / 1000)
            await ws.send(json.dumps(answer, indent=None))
            if stop:
                break
    except websockets.ConnectionClosed:
        pass
    finally:
        entry["closed_ms"] = now_ms()
        with lock:
            decoders.append(decoder)


async def process_request(path, headers):
    if mode.get("refuse"):
        return (http.HTTPStatus.SERVICE_UNAVAILABLE, [], b"refused by the stand-in\n")
    return None


class Control(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def reply(self, obj):
        body = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path, _, query = self.path.partition("?")
        if path == "/standin/log":
            with lock:
                self.reply(log)
        elif path == "/standin/mode":
            new = {}
            for pair in filter(None, query.split("&")):
                key, _, value = pair.partition("=")
                new[key] = int(value or "0")
            mode.clear()
            mode.update(new)
            self.reply(mode)
        else:
            self.send_error(404)


async def main():
    decoders.append(new_decoder(args.model_dir))  # the first connection is not kept waiting
    control = ThreadingHTTPServer(("127.0.0.1", args.control_port), Control)
    threading.Thread(target=control.serve_forever, daemon=True).start()
    async with websockets.serve(recognize, "127.0.0.1", args.port, process_request=process_request,
                                max_size=1 << 20):
        await asyncio.Future()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--control-port", type=int, required=True)
    ap.add_argument("--model-dir", default=MODEL_DIR)
    args = ap.parse_args()
    asyncio.run(main())
