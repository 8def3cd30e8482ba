"""Task 8: the REST API — POST / → SQS SendMessage — with its deployment and stage.

The API is one resource: its model, validator, method, integration, responses and stage only mean
something together, and any change to them needs a new deployment to take effect.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pocctl import arns, aws
from pocctl.config import Config
from pocctl.resources.base import Change, Context, Observed, Resource, call_or_none

MODEL_NAME = "Order"
_NOT_FOUND = "NotFoundException"
VALIDATOR_NAME = "body-only"
# SQS wants a form-encoded query; urlEncode keeps an "&" in the order from splitting it.
REQUEST_TEMPLATE = "Action=SendMessage&MessageBody=$util.urlEncode($input.body)"
OK_TEMPLATE = '{"messageId": "$input.path(\'$.SendMessageResponse.SendMessageResult.MessageId\')"}'
FAIL_TEMPLATE = '{"message": "could not enqueue the order"}'
ORDER_SCHEMA = {
    "$schema": "http://json-schema.org/draft-04/schema#",
    "title": "Order",
    "type": "object",
    "minProperties": 1,
}


def invoke_url(ctx: Context, api_id: str, stage: str) -> str:
    endpoint = ctx.aws.endpoint_url
    if endpoint:
        # The path LocalStack uses too, so the same URL shape works on both.
        return f"{endpoint.rstrip('/')}/restapis/{api_id}/{stage}/_user_request_/"
    return f"https://{api_id}.execute-api.{ctx.region}.amazonaws.com/{stage}/"


class RestApi(Resource):
    """Task 8's REST API, found by name (REST API names are not unique: see _api)."""

    type = "apigateway_rest_api"
    kind = "api"
    noun = "rest api"

    def __init__(self, cfg: Config) -> None:
        # It sends to the queue with its role's credentials.
        super().__init__("api", cfg.api.name, ("role.apigateway", "queue.orders"))

    def console_url(self, identity: dict[str, Any], region: str) -> str | None:
        api = identity.get("id")
        if not api:
            return None
        home = f"https://{region}.console.aws.amazon.com/apigateway/main/apis/{api}"
        return f"{home}/resources?api={api}&region={region}"

    def cli_args(self, identity: dict[str, Any]) -> list[str] | None:
        api = identity.get("id")
        return ["apigateway get-rest-api", f"--rest-api-id {api}"] if api else None

    def invoke_url(self, identity: dict[str, Any]) -> str | None:
        return identity.get("url")

    # -- desired ----------------------------------------------------------------------------------

    def desired(self, ctx: Context) -> dict[str, Any]:
        cfg = ctx.cfg
        api = {
            "endpoint_type": "REGIONAL",
            "model": {"contentType": "application/json", "schema": ORDER_SCHEMA},
            "validator": {"validateRequestBody": True, "validateRequestParameters": False},
            "method": {
                "authorizationType": "NONE",
                "requestModels": {"application/json": MODEL_NAME},
                "requestValidator": VALIDATOR_NAME,
            },
            "integration": {
                "type": "AWS",
                "httpMethod": "POST",
                "uri": arns.sqs_integration(ctx, cfg.queue.name),
                "credentials": arns.role(ctx, cfg.iam.roles.apigateway),
                "requestParameters": {
                    "integration.request.header.Content-Type": "'application/x-www-form-urlencoded'"
                },
                "requestTemplates": {"application/json": REQUEST_TEMPLATE},
                "passthroughBehavior": "NEVER",
            },
            "responses": {
                "200": {"selectionPattern": "", "template": OK_TEMPLATE},
                "400": {"selectionPattern": "4\\d{2}", "template": None},
                "500": {"selectionPattern": "5\\d{2}", "template": FAIL_TEMPLATE},
            },
        }
        return {
            **api,
            "stage": {
                "name": cfg.api.stage,
                "rateLimit": float(cfg.api.throttling_rate_limit),
                "burstLimit": cfg.api.throttling_burst_limit,
            },
            "deployed": _fingerprint(api),
        }

    # -- find -------------------------------------------------------------------------------------

    def _api(self, ctx: Context) -> dict[str, Any] | None:
        """The REST API named ``self.name``: GetRestApi of the ID the state recorded (the one
        read a no-op `up` needs), else the only one of that name in GetRestApis."""
        apigw = ctx.client("apigateway")
        known = (ctx.known.get(self.key) or {}).get("id")
        if known:
            api = call_or_none(lambda: apigw.get_rest_api(restApiId=known), _NOT_FOUND)
            if api is not None and api["name"] == self.name:
                return dict(api)
        # REST API names are not unique: adopt the only one, refuse to guess among several.
        found = [
            item
            for page in apigw.get_paginator("get_rest_apis").paginate()
            for item in page["items"]
            if item["name"] == self.name
        ]
        if len(found) > 1:
            raise aws.AwsError(
                f"{len(found)} REST APIs are named {self.name} "
                f"({', '.join(sorted(a['id'] for a in found))})",
                hint="delete the extra ones in the console, or set api.name in config.yaml",
            )
        return found[0] if found else None

    def find(self, ctx: Context) -> Observed | None:
        api = self._api(ctx)
        if api is None:
            return None
        api_id = api["id"]
        apigw = ctx.client("apigateway")
        root = api.get("rootResourceId") or _root_id(apigw, api_id)
        observed: Observed = {
            "id": api_id,
            "arn": arns.rest_api(ctx, api_id),
            "root": root,
            "endpoint_type": ((api.get("endpointConfiguration") or {}).get("types") or [None])[0],
            "model": None,
            "validator": None,
            "method": None,
            "integration": None,
            "responses": None,
            "stage": None,
            "deployed": None,
        }
        models = {m["name"]: m for m in apigw.get_models(restApiId=api_id).get("items", [])}
        if MODEL_NAME in models:
            m = models[MODEL_NAME]
            observed["model"] = {
                "contentType": m.get("contentType"),
                "schema": _json(m.get("schema")),
            }
        validators = {
            v["name"]: v for v in apigw.get_request_validators(restApiId=api_id).get("items", [])
        }
        observed["validator_ids"] = {n: v["id"] for n, v in validators.items()}
        if VALIDATOR_NAME in validators:
            v = validators[VALIDATOR_NAME]
            observed["validator"] = {
                "validateRequestBody": bool(v.get("validateRequestBody")),
                "validateRequestParameters": bool(v.get("validateRequestParameters")),
            }
        observed.update(self._read_method(apigw, api_id, root, observed["validator_ids"]))
        observed.update(self._read_stage(ctx, apigw, api_id))
        observed["old_stage"] = self._old_stage(ctx, apigw, api_id)
        return observed

    def _read_method(
        self, apigw: Any, api_id: str, root: str, validator_ids: dict[str, str]
    ) -> dict[str, Any]:
        """POST / as find reports it: method, integration and its responses."""
        out: dict[str, Any] = {}
        method = call_or_none(
            lambda: apigw.get_method(restApiId=api_id, resourceId=root, httpMethod="POST"),
            _NOT_FOUND,
        )
        if method:
            by_id = {i: n for n, i in validator_ids.items()}
            out["method"] = {
                "authorizationType": method.get("authorizationType"),
                "requestModels": method.get("requestModels") or {},
                "requestValidator": by_id.get(method.get("requestValidatorId")),
            }
            integ = method.get("methodIntegration")
            if integ:
                out["integration"] = {
                    "type": integ.get("type"),
                    "httpMethod": integ.get("httpMethod"),
                    "uri": integ.get("uri"),
                    "credentials": integ.get("credentials"),
                    "requestParameters": integ.get("requestParameters") or {},
                    "requestTemplates": integ.get("requestTemplates") or {},
                    "passthroughBehavior": integ.get("passthroughBehavior"),
                }
                out["responses"] = {
                    code: {
                        "selectionPattern": r.get("selectionPattern", ""),
                        "template": (r.get("responseTemplates") or {}).get("application/json"),
                    }
                    for code, r in (integ.get("integrationResponses") or {}).items()
                }
        return out

    def _read_stage(self, ctx: Context, apigw: Any, api_id: str) -> dict[str, Any]:
        """The configured stage: its throttling, and the config its deployment was made from."""
        out: dict[str, Any] = {}
        name = ctx.cfg.api.stage
        stage = call_or_none(lambda: apigw.get_stage(restApiId=api_id, stageName=name), _NOT_FOUND)
        if stage:
            throttle = (stage.get("methodSettings") or {}).get("*/*", {})
            out["stage"] = {
                "name": stage["stageName"],
                "rateLimit": throttle.get("throttlingRateLimit"),
                "burstLimit": throttle.get("throttlingBurstLimit"),
            }
            deployment = apigw.get_deployment(restApiId=api_id, deploymentId=stage["deploymentId"])
            out["deployed"] = deployment.get("description", "")
        return out

    def _old_stage(self, ctx: Context, apigw: Any, api_id: str) -> str | None:
        """The stage an earlier `up` made under another api.stage, if it is still there (its
        invoke URL would still put orders on the queue). Only the state file knows it: a stage
        made in the console is not pocctl's to delete."""
        known = ctx.known.get(self.key) or {}
        old = known.get("stage")
        if not old or old == ctx.cfg.api.stage or known.get("id") != api_id:
            return None
        if call_or_none(lambda: apigw.get_stage(restApiId=api_id, stageName=old), _NOT_FOUND):
            return str(old)
        return None

    def diff(self, ctx: Context, observed: Observed) -> list[Change]:
        changes = super().diff(ctx, observed)
        if observed.get("old_stage"):
            changes.append(Change("old stage", observed["old_stage"], None))
        return changes

    def identity(self, ctx: Context, observed: Observed) -> dict[str, Any]:
        out = {"arn": observed.get("arn"), "id": observed.get("id")}
        if observed.get("stage"):
            out["url"] = invoke_url(ctx, observed["id"], ctx.cfg.api.stage)
            out["stage"] = ctx.cfg.api.stage
        return out

    # -- mutate -----------------------------------------------------------------------------------

    def create(self, ctx: Context) -> Observed:
        api = ctx.client("apigateway").create_rest_api(
            name=self.name,
            description="pocctl: POST / puts an order on the queue",
            endpointConfiguration={"types": ["REGIONAL"]},
            tags={"pocctl": "orders-pipeline"},
        )
        # Have the engine record the ID at once: a run killed now must find this API, not make
        # a second one.
        ctx.checkpoint({"arn": None, "id": api["id"]})
        observed = {
            "id": api["id"],
            "root": api.get("rootResourceId") or _root_id(ctx.client("apigateway"), api["id"]),
            "validator_ids": {},
        }
        want = self.desired(ctx)
        return self.update(ctx, observed, [Change(k, None, v) for k, v in want.items()])

    def update(self, ctx: Context, observed: Observed, changes: list[Change]) -> Observed:
        apigw = ctx.client("apigateway")
        api_id, root = observed["id"], observed["root"]
        want = self.desired(ctx)
        fields = {c.field for c in changes}
        if "endpoint_type" in fields and observed.get("endpoint_type"):
            apigw.update_rest_api(
                restApiId=api_id,
                patchOperations=[
                    {
                        "op": "replace",
                        "path": f"/endpointConfiguration/types/{observed['endpoint_type']}",
                        "value": "REGIONAL",
                    }
                ],
            )
        if "model" in fields:
            self._put_model(apigw, api_id, want, exists=bool(observed.get("model")))
        validator_ids = dict(observed.get("validator_ids") or {})
        if "validator" in fields:
            validator_ids[VALIDATOR_NAME] = self._put_validator(apigw, api_id, validator_ids)
        if fields & {"method", "integration", "responses"}:
            if observed.get("method"):
                # put_method refuses to overwrite; the method owns its integration and responses.
                apigw.delete_method(restApiId=api_id, resourceId=root, httpMethod="POST")
            self._put_method(apigw, api_id, root, want, validator_ids[VALIDATOR_NAME])
        if "deployed" in fields or "stage" in fields and not observed.get("stage"):
            self._deploy(apigw, api_id, want, to_existing_stage=bool(observed.get("stage")))
        if "stage" in fields:
            self._throttle(apigw, api_id, want["stage"])
        if observed.get("old_stage"):
            apigw.delete_stage(restApiId=api_id, stageName=observed["old_stage"])
        arn = arns.rest_api(ctx, api_id)
        return {**observed, **want, "arn": arn, "validator_ids": validator_ids, "old_stage": None}

    def _deploy(
        self, apigw: Any, api_id: str, want: dict[str, Any], *, to_existing_stage: bool
    ) -> None:
        """A new deployment of the API, made live on the stage.

        A stage that exists is pointed at the new deployment with UpdateStage (its deploymentId),
        as the API Gateway Developer Guide does it ("Create a deployment for a REST API in API
        Gateway", AWS CLI: https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-deployments.html),
        so the stage keeps its settings (throttling) whatever CreateDeployment does to a stage it
        is named: moto 5.2.5 replaces the stage, and its throttling with it.
        """
        if not to_existing_stage:
            apigw.create_deployment(
                restApiId=api_id, stageName=want["stage"]["name"], description=want["deployed"]
            )
            return
        deployment = apigw.create_deployment(restApiId=api_id, description=want["deployed"])
        apigw.update_stage(
            restApiId=api_id,
            stageName=want["stage"]["name"],
            patchOperations=[{"op": "replace", "path": "/deploymentId", "value": deployment["id"]}],
        )

    def _put_model(self, apigw: Any, api_id: str, want: dict[str, Any], *, exists: bool) -> None:
        schema = json.dumps(want["model"]["schema"])
        if exists:
            apigw.update_model(
                restApiId=api_id,
                modelName=MODEL_NAME,
                patchOperations=[{"op": "replace", "path": "/schema", "value": schema}],
            )
        else:
            apigw.create_model(
                restApiId=api_id,
                name=MODEL_NAME,
                contentType="application/json",
                schema=schema,
                description="an order is any non-empty JSON object",
            )

    def _put_validator(self, apigw: Any, api_id: str, validator_ids: dict[str, str]) -> str:
        """The body-only validator, made or put back; its ID."""
        if VALIDATOR_NAME in validator_ids:
            apigw.update_request_validator(
                restApiId=api_id,
                requestValidatorId=validator_ids[VALIDATOR_NAME],
                patchOperations=[
                    {"op": "replace", "path": "/validateRequestBody", "value": "true"},
                    {"op": "replace", "path": "/validateRequestParameters", "value": "false"},
                ],
            )
            return validator_ids[VALIDATOR_NAME]
        made = apigw.create_request_validator(
            restApiId=api_id,
            name=VALIDATOR_NAME,
            validateRequestBody=True,
            validateRequestParameters=False,
        )
        return str(made["id"])

    def _throttle(self, apigw: Any, api_id: str, s: dict[str, Any]) -> None:
        apigw.update_stage(
            restApiId=api_id,
            stageName=s["name"],
            patchOperations=[
                {
                    "op": "replace",
                    "path": "/*/*/throttling/rateLimit",
                    "value": str(s["rateLimit"]),
                },
                {
                    "op": "replace",
                    "path": "/*/*/throttling/burstLimit",
                    "value": str(s["burstLimit"]),
                },
            ],
        )

    def _put_method(
        self, apigw: Any, api_id: str, root: str, want: dict[str, Any], validator_id: str
    ) -> None:
        m, integ = want["method"], want["integration"]
        apigw.put_method(
            restApiId=api_id,
            resourceId=root,
            httpMethod="POST",
            authorizationType=m["authorizationType"],
            requestValidatorId=validator_id,
            requestModels=m["requestModels"],
        )
        apigw.put_integration(
            restApiId=api_id,
            resourceId=root,
            httpMethod="POST",
            type=integ["type"],
            integrationHttpMethod=integ["httpMethod"],
            uri=integ["uri"],
            credentials=integ["credentials"],
            requestParameters=integ["requestParameters"],
            requestTemplates=integ["requestTemplates"],
            passthroughBehavior=integ["passthroughBehavior"],
        )
        for code, r in want["responses"].items():
            apigw.put_method_response(
                restApiId=api_id,
                resourceId=root,
                httpMethod="POST",
                statusCode=code,
                responseModels={"application/json": "Empty"},
            )
            kwargs: dict[str, Any] = {}
            if r["template"] is not None:
                kwargs["responseTemplates"] = {"application/json": r["template"]}
            apigw.put_integration_response(
                restApiId=api_id,
                resourceId=root,
                httpMethod="POST",
                statusCode=code,
                selectionPattern=r["selectionPattern"],
                **kwargs,
            )

    def delete(self, ctx: Context, observed: Observed) -> None:
        apigw = ctx.client("apigateway")

        def remove() -> None:
            call_or_none(lambda: apigw.delete_rest_api(restApiId=observed["id"]), _NOT_FOUND)

        # DeleteRestApi is limited to one call per 30 s per account.
        aws.retry_while(
            remove,
            lambda e: (
                "DeleteRestApi allows one call per 30 s per account"
                if aws.error_code(e) == "TooManyRequestsException"
                else None
            ),
            timeout=90.0,
            on_wait=ctx.on_retry,
            interval=10.0,
        )

    def status_note(self, observed: Observed) -> str:
        return "not deployed" if not observed.get("stage") else ""


def _root_id(apigw: Any, api_id: str) -> str:
    for item in apigw.get_resources(restApiId=api_id)["items"]:
        if item["path"] == "/":
            return item["id"]
    raise aws.AwsError(f"REST API {api_id} has no root resource")


def _json(v: Any) -> Any:
    if isinstance(v, str):
        try:
            return json.loads(v)
        except json.JSONDecodeError:
            return v
    return v


def _fingerprint(api: dict[str, Any]) -> str:
    """Stored as the deployment's description: tells whether the live stage runs this config."""
    digest = hashlib.sha256(json.dumps(api, sort_keys=True).encode()).hexdigest()[:16]
    return f"pocctl config {digest}"
