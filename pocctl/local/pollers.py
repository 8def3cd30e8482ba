"""The Lambda service's pollers: SQS and DynamoDB-stream event source mappings.

Mappings are discovered through the Lambda API (ListEventSourceMappings on the embedded
server, in every region that has a Lambda backend: a mapping lives in its function's region, as
on AWS), re-read every ``refresh_interval`` seconds: a mapping created, disabled, re-enabled or
deleted while the engine runs takes effect at the next refresh. Each enabled mapping gets its
own poller thread(s); they talk to SQS / DynamoDB Streams / Lambda through the same APIs as on
AWS, so moto stays the single source of truth. Each call goes to the region of the ARN it
acts on (queue, stream, function, destination): resources are regional on AWS, and a poller in
eu-west-1 must read eu-west-1's queue.

Each mapping reports its last batch as AWS does (``Reporter``): LastProcessingResult "OK" after
a batch the function processed, "PROBLEM: Function call failed" after a function error
(https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis.html shows both values in
GetEventSourceMapping's output; https://docs.aws.amazon.com/lambda/latest/api/
API_EventSourceMappingConfiguration.html: "The result of the event source mapping's last
processing attempt").
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

logger = logging.getLogger("pocctl.local")

LogFn = Callable[[str], None]
# clients(service, region=REGION): a client of the embedded AWS in that region.
ClientFactory = Callable[..., Any]
# report(mapping UUID, function ARN, LastProcessingResult) after each batch.
Reporter = Callable[[str, str, str], None]
# The regions to look for mappings in (those where the embedded AWS has a Lambda backend).
Regions = Callable[[], Iterable[str]]

# LastProcessingResult values, as AWS reports them (see the module docstring).
RESULT_OK = "OK"
RESULT_FUNCTION_FAILED = "PROBLEM: Function call failed"

# SQS long-poll wait: short, so that stop() and disabling a mapping take effect quickly.
SQS_WAIT_SECONDS = 1
# How often an idle stream shard is read (AWS reads each shard about four times a second).
STREAM_IDLE_WAIT = 0.1
SHARD_REFRESH = 1.0
ERROR_BACKOFF = 1.0
# Poller threads' names start with this (persist.py tells their ReceiveMessage calls apart).
POLLER_THREAD_PREFIX = "pocctl-poller-"


class Gate(Protocol):
    """Held while a batch is between taken and settled (persist.SnapshotGate with --data)."""

    def batch(self) -> contextlib.AbstractContextManager[Any]: ...

    def release(self) -> None: ...


class _NoGate:
    def batch(self) -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext()

    def release(self) -> None:
        pass


@dataclass
class InvokeOutcome:
    payload: Any  # the handler's result (decoded JSON), or the error object
    error: dict[str, Any] | None  # set when the function failed (FunctionError)

    @property
    def ok(self) -> bool:
        return self.error is None


Invoker = Callable[[str, dict[str, Any]], InvokeOutcome]


def arn_region(arn: str) -> str:
    """The region field of an ARN (arn:partition:service:REGION:account:resource)."""
    return arn.split(":", 4)[3]


def lambda_invoker(lambda_clients: Callable[[str], Any]) -> Invoker:
    """Invoke through the Lambda API: the request-response path moto hands to our executor.
    ``lambda_clients(region)``: the function is invoked in its own region (moto finds a
    function only in the backend of the region the request is signed for)."""

    def invoke(function_arn: str, event: dict[str, Any]) -> InvokeOutcome:
        resp = lambda_clients(arn_region(function_arn)).invoke(
            FunctionName=function_arn, Payload=json.dumps(event).encode("utf-8")
        )
        raw = resp["Payload"].read()
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = raw.decode("utf-8", "replace")
        if resp.get("FunctionError"):
            err = payload if isinstance(payload, dict) else {"errorMessage": str(payload)}
            return InvokeOutcome(payload, err)
        return InvokeOutcome(payload, None)

    return invoke


def batch_item_failures(response: Any, valid_ids: list[str]) -> list[str] | None:
    """The item identifiers a ReportBatchItemFailures response names, as AWS reads it.

    Returns [] for a complete success (null/empty response or list) and None when the response
    is invalid, which AWS treats as a failure of the whole batch.
    """
    if response is None or response == {} or response == "":
        return []
    if not isinstance(response, dict):
        return None
    failures = response.get("batchItemFailures")
    if failures is None:
        return []
    if not isinstance(failures, list):
        return None
    ids: list[str] = []
    for item in failures:
        ident = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(ident, str) or ident not in valid_ids:
            return None
        ids.append(ident)
    return ids


class Poller:
    """Base: a mapping's poller threads; ``config`` is refreshed by the manager."""

    threads_per_mapping = 1

    def __init__(
        self,
        config: dict[str, Any],
        *,
        clients: ClientFactory,
        invoke: Invoker,
        log: LogFn,
        checkpoints: dict[tuple[str, str], dict[str, Any]],
        gate: Gate | None = None,
        report: Reporter | None = None,
    ) -> None:
        self.config = config
        self.uuid: str = config["UUID"]
        self._clients = clients
        self._report = report
        self._invoke = invoke
        self._log = log
        self._checkpoints = checkpoints
        self._gate: Gate = gate or _NoGate()
        self.stop_event = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def function_name(self) -> str:
        return str(self.config["FunctionArn"]).rsplit(":", 1)[-1]

    def _client(self, service: str, arn: str) -> Any:
        """A client in the region of the resource ``arn`` names."""
        return self._clients(service, region=arn_region(arn))

    def _reported(self, ok: bool) -> None:
        if self._report is None:
            return
        try:
            self._report(
                self.uuid,
                str(self.config["FunctionArn"]),
                RESULT_OK if ok else RESULT_FUNCTION_FAILED,
            )
        except Exception:  # a report never stops a poller (the mapping may be gone already)
            logger.debug("could not record the result of mapping %s", self.uuid, exc_info=True)

    def start(self) -> None:
        for i in range(self.threads_per_mapping):
            t = threading.Thread(
                target=self._guarded,
                name=f"{POLLER_THREAD_PREFIX}{self.uuid[:8]}-{i}",
                daemon=True,
            )
            self._threads.append(t)
            t.start()

    def signal_stop(self) -> None:
        self.stop_event.set()

    def join(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
            if t.is_alive():
                logger.error("poller thread %s did not stop in time", t.name)

    @property
    def alive(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def _guarded(self) -> None:
        last_error = ""
        while not self.stop_event.is_set():
            try:
                self.run()
                return
            except Exception as exc:
                if self.stop_event.is_set():
                    return
                logger.debug("poller for mapping %s failed", self.uuid, exc_info=True)
                if _source_gone(exc):
                    # Deleted queue or stream: the mapping goes with it on the next refresh.
                    pass
                elif str(exc) != last_error:  # say it once, not every second
                    last_error = str(exc)
                    self._log(f"[poller {self.function_name}] error: {exc}; retrying")
                self.stop_event.wait(ERROR_BACKOFF)

    def run(self) -> None:
        raise NotImplementedError


def _source_gone(exc: BaseException) -> bool:
    code = str((getattr(exc, "response", None) or {}).get("Error", {}).get("Code", ""))
    return code in (
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
        "ResourceNotFoundException",
    )


class SqsPoller(Poller):
    """Long-polls the queue; deletes what succeeded; the queue's own redrive does the rest."""

    # AWS starts five concurrent pollers per SQS mapping; two keep 2 cores busy without thrashing.
    threads_per_mapping = 2

    def run(self) -> None:
        arn = str(self.config["EventSourceArn"])
        sqs = self._client("sqs", arn)
        _, _, _, region, account, queue_name = arn.split(":", 5)
        queue_url = sqs.get_queue_url(QueueName=queue_name, QueueOwnerAWSAccountId=account)[
            "QueueUrl"
        ]
        while not self.stop_event.is_set():
            try:
                messages = self._receive(sqs, queue_url)
                if not messages:
                    continue
                if self.stop_event.is_set():
                    # Disabled or stopping between receive and invoke: hand the batch back.
                    sqs.change_message_visibility_batch(
                        QueueUrl=queue_url,
                        Entries=[
                            {
                                "Id": str(i),
                                "ReceiptHandle": m["ReceiptHandle"],
                                "VisibilityTimeout": 0,
                            }
                            for i, m in enumerate(messages)
                        ],
                    )
                    return
                self._process(sqs, queue_url, arn, region, messages)
            finally:
                # With --data the receive took the snapshot gate (persist.py): settled now.
                self._gate.release()

    def _receive(self, sqs: Any, queue_url: str) -> list[dict[str, Any]]:
        cfg = self.config
        batch_size = int(cfg.get("BatchSize") or 10)
        window = float(cfg.get("MaximumBatchingWindowInSeconds") or 0)
        messages: list[dict[str, Any]] = []
        window_end = time.monotonic() + window
        while len(messages) < batch_size and not self.stop_event.is_set():
            resp = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=min(10, batch_size - len(messages)),
                WaitTimeSeconds=SQS_WAIT_SECONDS if not messages else 0,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            got = resp.get("Messages", [])
            messages.extend(got)
            if not messages or time.monotonic() >= window_end:
                break
            if not got:
                self.stop_event.wait(min(0.05, max(0.0, window_end - time.monotonic())))
        return messages

    def _process(
        self, sqs: Any, queue_url: str, arn: str, region: str, messages: list[dict[str, Any]]
    ) -> None:
        event = {"Records": [_sqs_record(m, arn, region) for m in messages]}
        outcome = self._invoke(str(self.config["FunctionArn"]), event)
        ids = [m["MessageId"] for m in messages]
        self._reported(outcome.ok)
        if not outcome.ok:
            # Nothing is deleted: the messages come back after the visibility timeout and the
            # queue's RedrivePolicy moves them to the DLQ after maxReceiveCount receives.
            self._log(
                f"[poller {self.function_name}] batch of {len(ids)} failed: "
                f"{(outcome.error or {}).get('errorType', '')} "
                f"{(outcome.error or {}).get('errorMessage', '')}".rstrip()
            )
            return
        failed: list[str] | None = []
        if "ReportBatchItemFailures" in (self.config.get("FunctionResponseTypes") or []):
            failed = batch_item_failures(outcome.payload, ids)
            if failed is None:
                self._log(
                    f"[poller {self.function_name}] invalid batchItemFailures response; "
                    "the whole batch will be retried"
                )
                return
        done = [m for m in messages if m["MessageId"] not in set(failed)]
        for i in range(0, len(done), 10):
            chunk = done[i : i + 10]
            resp = sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(chunk)
                ],
            )
            for f in resp.get("Failed", []):
                logger.warning("could not delete message from %s: %s", queue_url, f)


def _sqs_record(m: dict[str, Any], arn: str, region: str) -> dict[str, Any]:
    attrs = {}
    for name, a in (m.get("MessageAttributes") or {}).items():
        binary = a.get("BinaryValue")
        attrs[name] = {
            "stringValue": a.get("StringValue"),
            "binaryValue": base64.b64encode(binary).decode() if binary is not None else None,
            "stringListValues": a.get("StringListValues", []),
            "binaryListValues": [
                base64.b64encode(b).decode() for b in a.get("BinaryListValues", [])
            ],
            "dataType": a.get("DataType"),
        }
        attrs[name] = {k: v for k, v in attrs[name].items() if v is not None}
    return {
        "messageId": m["MessageId"],
        "receiptHandle": m["ReceiptHandle"],
        "body": m.get("Body", ""),
        "attributes": m.get("Attributes", {}),
        "messageAttributes": attrs,
        "md5OfBody": m.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": region,
    }


def sns_record(
    subscription_arn: str, topic_arn: str, post: dict[str, Any], region: str
) -> dict[str, Any]:
    """One SNS notification as Lambda receives it, from SNS's HTTP/S notification ``post``.

    AWS's example event ("Invoking Lambda functions with Amazon SNS notifications",
    https://docs.aws.amazon.com/lambda/latest/dg/with-sns.html): the notification's own fields,
    with SigningCertUrl / UnsubscribeUrl spelt so, Subject null and MessageAttributes {} when
    the publisher gave none, under the subscription's ARN.
    """
    return {
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": subscription_arn,
        "Sns": {
            "Type": post["Type"],
            "MessageId": post["MessageId"],
            "TopicArn": topic_arn,
            "Subject": post.get("Subject"),
            "Message": post["Message"],
            "Timestamp": post["Timestamp"],
            "SignatureVersion": post["SignatureVersion"],
            "Signature": post["Signature"],
            "SigningCertUrl": post["SigningCertURL"],
            "UnsubscribeUrl": (
                f"https://sns.{region}.amazonaws.com/?Action=Unsubscribe"
                f"&SubscriptionArn={subscription_arn}"
            ),
            "MessageAttributes": post.get("MessageAttributes") or {},
        },
    }


class StreamPoller(Poller):
    """Reads each shard in order from the mapping's checkpoint; retries, bisects, gives up to
    the on-failure destination as configured."""

    def run(self) -> None:
        arn = str(self.config["EventSourceArn"])
        streams = self._client("dynamodbstreams", arn)
        streams.meta.events.register(
            "before-parse.dynamodb-streams.GetRecords", _keep_raw_records, unique_id=RAW_RECORDS
        )
        iterators: dict[str, str] = {}
        shards: list[dict[str, Any]] = []
        described = 0.0
        while not self.stop_event.is_set():
            if time.monotonic() - described >= SHARD_REFRESH:  # shards change rarely
                desc = streams.describe_stream(StreamArn=arn)["StreamDescription"]
                shards, described = desc.get("Shards", []), time.monotonic()
            busy = False
            for shard in shards:
                shard_id = shard["ShardId"]
                if shard_id not in iterators:
                    with self._gate.batch():  # the iterator and its checkpoint, together
                        iterators[shard_id] = self._resume(streams, arn, shard_id)
                resp = self._get_records(streams, shard_id, iterators[shard_id])
                records = resp.get(RAW_RECORDS, resp.get("Records", []))
                if resp.get("_stale"):
                    iterators.pop(shard_id, None)
                    continue
                if records:
                    busy = True
                    if not self._deliver(arn, shard_id, [_stream_record(r, arn) for r in records]):
                        return  # stopped half-way: the checkpoint says where to resume
                    # _deliver checkpointed {"after": last sequence number}: resuming from a
                    # sequence number survives iterator expiry, unlike a saved iterator.
                    iterators[shard_id] = resp["NextShardIterator"]
                elif "NextShardIterator" in resp:
                    iterators[shard_id] = resp["NextShardIterator"]
                    self._checkpoints.setdefault(
                        (self.uuid, shard_id), {"iterator": iterators[shard_id]}
                    )
            if not busy:
                self.stop_event.wait(STREAM_IDLE_WAIT)

    def _get_records(self, streams: Any, shard_id: str, iterator: str) -> dict[str, Any]:
        try:
            return dict(
                streams.get_records(
                    ShardIterator=iterator, Limit=int(self.config.get("BatchSize") or 100)
                )
            )
        except Exception as exc:
            cp = self._checkpoints.get((self.uuid, shard_id), {})
            if cp.get("iterator") != iterator:
                raise
            # The remembered iterator is unusable (the stream was re-created): start over
            # from StartingPosition rather than failing forever.
            logger.warning(
                "stream iterator for mapping %s unusable (%s); resetting", self.uuid, exc
            )
            del self._checkpoints[(self.uuid, shard_id)]
            return {"_stale": True}

    def _resume(self, streams: Any, arn: str, shard_id: str) -> str:
        cp = self._checkpoints.get((self.uuid, shard_id))
        if cp and "iterator" in cp:
            return str(cp["iterator"])
        if cp and "after" in cp:
            kwargs = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": cp["after"]}
        else:
            position = str(self.config.get("StartingPosition") or "LATEST")
            kwargs = {
                "ShardIteratorType": "TRIM_HORIZON" if position == "TRIM_HORIZON" else "LATEST"
            }
        it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard_id, **kwargs)["ShardIterator"]
        if not cp:
            # Nothing processed yet: remember where StartingPosition put us (LATEST moves on).
            self._checkpoints[(self.uuid, shard_id)] = {"iterator": it}
        return str(it)

    def _done(self, shard_id: str, record: dict[str, Any]) -> None:
        self._checkpoints[(self.uuid, shard_id)] = {"after": record["dynamodb"]["SequenceNumber"]}

    def _deliver(self, arn: str, shard_id: str, records: list[dict[str, Any]]) -> bool:
        """Process ``records`` until each succeeded or was given up. False if stopped."""
        cfg = self.config
        max_retries = int(
            cfg.get("MaximumRetryAttempts", -1)
            if cfg.get("MaximumRetryAttempts") is not None
            else -1
        )
        bisect = bool(cfg.get("BisectBatchOnFunctionError"))
        rbif = "ReportBatchItemFailures" in (cfg.get("FunctionResponseTypes") or [])
        attempts = 0
        while records:
            if self.stop_event.is_set():
                return False
            attempts += 1
            # With --data, a snapshot sees this batch before its invoke or checkpointed after.
            with self._gate.batch():
                outcome = self._invoke(str(cfg["FunctionArn"]), {"Records": records})
                self._reported(outcome.ok)
                seqs = [r["dynamodb"]["SequenceNumber"] for r in records]
                failed: list[str] | None = None
                if outcome.ok:
                    failed = batch_item_failures(outcome.payload, seqs) if rbif else []
                    if failed == []:
                        self._done(shard_id, records[-1])
                        return True
                    if failed is not None:
                        # Everything before the first reported failure is done; retry from it.
                        first = min(seqs.index(s) for s in failed)
                        if first > 0:
                            self._done(shard_id, records[first - 1])
                            records = records[first:]
            error: dict[str, Any] | None = None
            if outcome.ok:
                if failed is None:
                    error = {"errorMessage": "invalid batchItemFailures response"}
            else:
                error = outcome.error
                if bisect and len(records) > 1:
                    # Splitting does not count as a retry (AWS), each half gets its own.
                    half = len(records) // 2
                    self._log(
                        f"[poller {self.function_name}] batch of {len(records)} failed; bisecting"
                    )
                    return self._deliver(arn, shard_id, records[:half]) and self._deliver(
                        arn, shard_id, records[half:]
                    )
            if error is not None:
                self._log(
                    f"[poller {self.function_name}] batch of {len(records)} failed: "
                    f"{error.get('errorType', '')} {error.get('errorMessage', '')}".rstrip()
                )
            if max_retries >= 0 and attempts > max_retries:
                with self._gate.batch():  # the failure record and the checkpoint, together
                    self._give_up(arn, shard_id, records, attempts, error)
                    self._done(shard_id, records[-1])
                return True
            self.stop_event.wait(min(1.0, 0.05 * 2 ** min(attempts, 5)))
        return True

    def _give_up(
        self,
        arn: str,
        shard_id: str,
        records: list[dict[str, Any]],
        attempts: int,
        error: dict[str, Any] | None,
    ) -> None:
        first, last = records[0]["dynamodb"], records[-1]["dynamodb"]
        info = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": self.config["FunctionArn"],
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": attempts,
            },
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                **({"functionError": "Unhandled"} if error else {}),
            },
            "version": "1.0",
            "timestamp": _iso(time.time()),
            "DDBStreamBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": first["SequenceNumber"],
                "endSequenceNumber": last["SequenceNumber"],
                "approximateArrivalOfFirstRecord": _iso(first["ApproximateCreationDateTime"]),
                "approximateArrivalOfLastRecord": _iso(last["ApproximateCreationDateTime"]),
                "batchSize": len(records),
                "streamArn": arn,
            },
        }
        dest = ((self.config.get("DestinationConfig") or {}).get("OnFailure") or {}).get(
            "Destination"
        )
        self._log(
            f"[poller {self.function_name}] gave up on {len(records)} record(s) "
            f"{first['SequenceNumber']}..{last['SequenceNumber']} after {attempts} "
            f"attempt(s)" + (f"; sent to {dest}" if dest else "; discarded")
        )
        if not dest:
            return
        body = json.dumps(info)
        if ":sqs:" in dest:
            sqs = self._client("sqs", dest)
            _, _, _, _, account, name = dest.split(":", 5)
            url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
            sqs.send_message(QueueUrl=url, MessageBody=body)
        elif ":sns:" in dest:
            self._client("sns", dest).publish(TopicArn=dest, Message=body)
        else:
            logger.error("unsupported on-failure destination %s", dest)


def _iso(t: float | dt.datetime | str) -> str:
    if isinstance(t, str):
        return t
    if isinstance(t, dt.datetime):
        t = t.timestamp()
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# GetRecords' records kept as the wire carries them (the poller's client, before botocore's
# parser sees them): DynamoDB JSON with binary values base64-encoded and times in epoch
# seconds, the form Lambda's event has (https://docs.aws.amazon.com/lambda/latest/dg/
# with-ddb.html, the sample event). botocore would turn them into bytes, which the event's JSON
# cannot carry, and datetimes, and parsing them cost ~5% of the server's CPU under a spike.
RAW_RECORDS = "pocctlRawRecords"


def _keep_raw_records(
    response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any
) -> None:
    if response_dict.get("status_code") != 200:
        return  # errors parse as usual
    try:
        body = json.loads(response_dict["body"])
    except (KeyError, TypeError, ValueError):
        return
    if isinstance(body, dict) and isinstance(body.get("Records"), list):
        customized_response_dict[RAW_RECORDS] = body.pop("Records")
        response_dict["body"] = json.dumps(body).encode()


def _stream_record(r: dict[str, Any], arn: str) -> dict[str, Any]:
    """A stream record as Lambda delivers it: GetRecords' Record plus eventSourceARN.

    eventVersion is "1.1" and awsRegion the stream's region, as DynamoDB Streams returns them
    (GetRecords example, https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/
    API_streams_GetRecords.html; the Lambda tutorial's sample event, https://docs.aws.amazon.com/
    lambda/latest/dg/with-ddb.html). moto writes "1.0" and "us-east-1" whatever the region.
    """
    rec = dict(r)
    ddb = dict(rec.get("dynamodb", {}))
    created = ddb.get("ApproximateCreationDateTime")
    if isinstance(created, dt.datetime):  # boto3 parsed it; Lambda events carry epoch seconds
        ddb["ApproximateCreationDateTime"] = round(created.timestamp())
    elif isinstance(created, float):  # the wire's, to the millisecond; the event's: seconds
        ddb["ApproximateCreationDateTime"] = round(created)
    rec["dynamodb"] = ddb
    rec["eventVersion"] = "1.1"
    rec["awsRegion"] = arn.split(":")[3]
    rec["eventSourceARN"] = arn
    return rec


class MappingManager:
    """Keeps one poller per enabled event source mapping, re-reading the mappings."""

    def __init__(
        self,
        *,
        clients: ClientFactory,
        invoke: Invoker,
        log: LogFn,
        refresh_interval: float = 1.0,
        checkpoints: dict[tuple[str, str], dict[str, Any]] | None = None,
        gate: Gate | None = None,
        regions: Regions,
        report: Reporter | None = None,
    ) -> None:
        self._clients = clients
        self._regions = regions
        self._report = report
        self._invoke = invoke
        self._log = log
        self.refresh_interval = refresh_interval
        self._pollers: dict[str, Poller] = {}
        self._stopping: list[Poller] = []
        # Stream positions by (mapping UUID, shard id); with --data, restored and kept (persist.py).
        self._checkpoints = checkpoints if checkpoints is not None else {}
        self._gate = gate
        self._stop = threading.Event()
        self._wake = threading.Event()  # set by stop(): end the refresh wait at once
        self._lock = threading.RLock()
        self._cond = threading.Condition()
        self.generation = 0
        self._thread: threading.Thread | None = None
        self._paused = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="pocctl-mappings", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.stop_all()

    def stop_all(self) -> None:
        """Stop every poller (signal all first, so they wind down in parallel)."""
        with self._lock:
            pollers = list(self._pollers.values()) + self._stopping
            self._pollers.clear()
            self._stopping = []
        for p in pollers:
            p.signal_stop()
        for p in pollers:
            p.join()

    def pause(self) -> None:
        """Stop all pollers and forget checkpoints until resume() (used around a reset)."""
        with self._lock:
            self._paused = True
            self.stop_all()
            self._checkpoints.clear()

    def resume(self) -> None:
        with self._lock:
            self._paused = False
        self.refresh()

    def polled(self) -> set[str]:
        """UUIDs of the mappings being polled right now."""
        with self._lock:
            return set(self._pollers)

    def wait_for_refresh(self, count: int = 1, timeout: float = 10.0) -> bool:
        """Block until ``count`` more refreshes have completed (for tests and tooling)."""
        with self._cond:
            target = self.generation + count
            return self._cond.wait_for(lambda: self.generation >= target, timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.refresh()
            except Exception as exc:
                logger.debug("could not list event source mappings", exc_info=True)
                self._log(f"[pollers] could not list event source mappings: {exc}")
            self._wake.wait(self.refresh_interval)

    def _list_mappings(self) -> dict[str, dict[str, Any]]:
        """Every region's mappings (ListEventSourceMappings lists one region's, as on AWS)."""
        mappings: dict[str, dict[str, Any]] = {}
        for region in sorted(set(self._regions())):
            lambda_client = self._clients("lambda", region=region)
            for page in lambda_client.get_paginator("list_event_source_mappings").paginate():
                for m in page.get("EventSourceMappings", []):
                    mappings[m["UUID"]] = m
        return mappings

    def refresh(self) -> None:
        with self._lock:
            if self._paused or self._stop.is_set():
                return
            mappings = self._list_mappings()
            for uid, poller in list(self._pollers.items()):
                m = mappings.get(uid)
                if m is None or m.get("State") != "Enabled":
                    self._log(
                        f"[pollers] {'stopped' if m is None else 'disabled'}: "
                        f"{poller.function_name} <- {poller.config['EventSourceArn']}"
                    )
                    poller.signal_stop()
                    self._stopping.append(self._pollers.pop(uid))
                    if m is None:  # a deleted mapping's position is gone with it
                        for key in [k for k in self._checkpoints if k[0] == uid]:
                            del self._checkpoints[key]
                else:
                    poller.config = m  # BatchSize, FunctionResponseTypes... apply at once
            self._stopping = [p for p in self._stopping if p.alive]
            for uid, m in mappings.items():
                if uid in self._pollers or m.get("State") != "Enabled":
                    continue
                cls = _poller_class(str(m.get("EventSourceArn", "")))
                if cls is None:
                    continue
                poller = cls(
                    m,
                    clients=self._clients,
                    invoke=self._invoke,
                    log=self._log,
                    checkpoints=self._checkpoints,
                    gate=self._gate,
                    report=self._report,
                )
                self._pollers[uid] = poller
                poller.start()
                self._log(f"[pollers] polling {m['EventSourceArn']} -> {poller.function_name}")
        with self._cond:
            self.generation += 1
            self._cond.notify_all()


def _poller_class(arn: str) -> type[Poller] | None:
    if arn.startswith("arn:aws:sqs:"):
        return SqsPoller
    if arn.startswith("arn:aws:dynamodb:") and "/stream/" in arn:
        return StreamPoller
    return None
