"""The embedded AWS: moto's server on 127.0.0.1 plus pocctl's own Lambda pollers, executor and
API Gateway data plane. The rest of pocctl only ever sees its endpoint URL."""
