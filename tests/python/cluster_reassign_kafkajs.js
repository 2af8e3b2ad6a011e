// kafkajs's admin client moving partitions of a Gregor cluster (run by
// test_reassignment.py, with NODE_PATH at compat/smoke/kafkajs/node_modules): one
// AlterPartitionReassignments (admin.alterPartitionReassignments) or
// ListPartitionReassignments (admin.listPartitionReassignments) per run, its answer
// printed as one "RESULT <json>" line on stdout; the Python side checks it.
//
//   node cluster_reassign_kafkajs.js --bootstrap HOST:PORT[,...] --op alter --topics JSON
//       JSON: [{"topic": T, "partitionAssignment": [{"partition": P, "replicas": [...]}]}]
//   node cluster_reassign_kafkajs.js --bootstrap HOST:PORT[,...] --op list [--topics JSON]
//       JSON: [{"topic": T, "partitions": [P, ...]}]; without it, every reassignment
//
// RESULT is {"ok": true, "value": <the call's answer>} or, when the call threw,
// {"ok": false, "error": {"name", "message", "type", "code", "errors": [{"topic",
// "partition", "type", "code"}]}} (a KafkaJSAggregateError's per-partition errors).
'use strict'

const { Kafka, logLevel } = require('kafkajs')

const opts = {}
const argv = process.argv.slice(2)
while (argv.length) {
  const flag = argv.shift()
  if (!flag.startsWith('--') || !argv.length) throw new Error(`bad argument ${flag}`)
  opts[flag.slice(2)] = argv.shift()
}

// kafkajs logs to stdout by default; stdout carries the result only.
const logCreator = () => ({ namespace, level, log }) => {
  const { message, ...extra } = log
  process.stderr.write(`[kafkajs ${namespace} ${level}] ${message} ${JSON.stringify(extra)}\n`)
}

const kafka = new Kafka({
  clientId: 'cluster-reassign-kafkajs',
  brokers: opts.bootstrap.split(','),
  logLevel: logLevel.INFO,
  logCreator,
  connectionTimeout: 5000,
  requestTimeout: 15000,
  retry: { initialRetryTime: 200, retries: 5 },
})

function describeError (err) {
  const one = e => ({ topic: e.topic, partition: e.partition, type: e.type, code: e.code })
  return {
    name: err.name,
    message: err.message,
    type: err.type,
    code: err.code,
    errors: Array.isArray(err.errors) ? err.errors.map(one) : [],
  }
}

async function main () {
  const admin = kafka.admin()
  await admin.connect()
  try {
    const topics = opts.topics ? JSON.parse(opts.topics) : null
    if (opts.op === 'alter') {
      return await admin.alterPartitionReassignments({ topics, timeout: 10000 })
    }
    if (opts.op === 'list') {
      return await admin.listPartitionReassignments({ topics, timeout: 10000 })
    }
    throw new Error(`unknown --op ${opts.op}`)
  } finally {
    await admin.disconnect()
  }
}

main().then(
  value => { process.stdout.write(`RESULT ${JSON.stringify({ ok: true, value: value === undefined ? null : value })}\n`) },
  err => {
    console.error(err)
    process.stdout.write(`RESULT ${JSON.stringify({ ok: false, error: describeError(err) })}\n`)
  },
)
