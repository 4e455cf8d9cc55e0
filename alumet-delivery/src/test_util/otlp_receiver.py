#!/usr/bin/env python3
"""An OTLP/HTTP metrics receiver for the tests: it decodes every request with the official
generated classes (PyPI's `opentelemetry-proto`), protobuf or JSON, gzip or not, and
writes one JSON line per data point (and one per request) to OUT_DIR/points.jsonl; its
port goes to OUT_DIR/port. Usage: otlp_receiver.py OUT_DIR"""

import gzip
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality

OUT = sys.argv[1]


def any_value(v):
    kind = v.WhichOneof("value")
    return [kind, getattr(v, kind) if kind else None]


def attributes(kvs):
    return {kv.key: any_value(kv.value) for kv in kvs}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = ExportMetricsServiceRequest()
        content_type = self.headers.get("Content-Type")
        if content_type == "application/json":
            json_format.Parse(body.decode(), request)
        elif content_type == "application/x-protobuf":
            request.ParseFromString(body)
        else:
            self.send_error(415, "unsupported content type %s" % content_type)
            return
        lines = [
            {
                "request": {
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                }
            }
        ]
        for rm in request.resource_metrics:
            resource = attributes(rm.resource.attributes)
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    kind = m.WhichOneof("data")
                    data = getattr(m, kind)
                    for dp in data.data_points:
                        vkind = dp.WhichOneof("value")
                        lines.append(
                            {
                                "name": m.name,
                                "unit": m.unit,
                                "type": kind,
                                "monotonic": getattr(data, "is_monotonic", None),
                                "temporality": AggregationTemporality.Name(
                                    data.aggregation_temporality
                                )
                                if kind == "sum"
                                else None,
                                "time": dp.time_unix_nano,
                                "start": dp.start_time_unix_nano,
                                "value": [vkind, getattr(dp, vkind)],
                                "attributes": attributes(dp.attributes),
                                "resource": resource,
                                "scope": sm.scope.name,
                            }
                        )
        with open(os.path.join(OUT, "points.jsonl"), "a") as f:
            for line in lines:
                f.write(json.dumps(line) + "\n")
        answer = ExportMetricsServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(os.path.join(OUT, "port.tmp"), "w") as f:
    f.write(str(server.server_address[1]))
os.rename(os.path.join(OUT, "port.tmp"), os.path.join(OUT, "port"))
server.serve_forever()
