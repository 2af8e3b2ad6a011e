// kafkajs over SASL_SSL against Gregor (run by test_security.py, with NODE_PATH at
// compat/smoke/kafkajs/node_modules): creates a topic, lists topics, produces, reads the
// records back in a consumer group, commits, and prints what it saw as one
// "RESULT <json>" line on stdout; the Python side checks it. With --check-auth-only 1 it
// only connects an admin client and prints "AUTH_OK" or "AUTH_FAILED <error type>".
//
//   node security_kafkajs.js --bootstrap HOST:PORT --ca CA.pem --mechanism scram-sha-512
//        --username U --password P --topic T --group G --count N [--deadline S]
'use strict'

const fs = require('fs')
const { Kafka, logLevel } = require('kafkajs')

const opts = { deadline: '30', count: '10', 'check-auth-only': '0' }
const argv = process.argv.slice(2)
while (argv.length) {
  const flag = argv.shift()
  if (!flag.startsWith('--') || !argv.length) throw new Error(`bad argument ${flag}`)
  opts[flag.slice(2)] = argv.shift()
}
const count = Number(opts.count)

// kafkajs logs to stdout by default; stdout carries the result only.
const logCreator = () => ({ namespace, level, log }) => {
  const { message, ...extra } = log
  process.stderr.write(`[kafkajs ${namespace} ${level}] ${message} ${JSON.stringify(extra)}\n`)
}

// What a kafkajs user writes for a secured Kafka: TLS with the CA, SASL/SCRAM.
const kafka = new Kafka({
  clientId: 'security-kafkajs',
  brokers: [opts.bootstrap],
  ssl: { ca: [fs.readFileSync(opts.ca, 'utf-8')] },
  sasl: { mechanism: opts.mechanism, username: opts.username, password: opts.password },
  logLevel: logLevel.INFO,
  logCreator,
  connectionTimeout: 5000,
  requestTimeout: 15000,
  retry: { initialRetryTime: 200, retries: opts['check-auth-only'] === '1' ? 0 : 5 },
})

async function checkAuth () {
  const admin = kafka.admin()
  try {
    await admin.connect()
    await admin.listTopics()
    return 'AUTH_OK'
  } catch (err) {
    // KafkaJSSASLAuthenticationError; the broker's code is in the message or the cause.
    const text = `${err.name} ${err.message} ${err.type || ''} ${(err.originalError && err.originalError.type) || ''}`
    return /SASL_AUTHENTICATION_FAILED|SASL authentication failed|Authentication failed/i.test(text)
      ? `AUTH_FAILED SASL_AUTHENTICATION_FAILED (${text})`
      : `AUTH_ERROR ${text}`
  } finally {
    await admin.disconnect()
  }
}

async function main () {
  const admin = kafka.admin()
  await admin.connect()
  let created, topics
  try {
    created = await admin.createTopics({
      topics: [{ topic: opts.topic, numPartitions: 2, replicationFactor: 1 }],
      waitForLeaders: true,
    })
    topics = await admin.listTopics()
  } finally {
    await admin.disconnect()
  }

  const producer = kafka.producer()
  await producer.connect()
  try {
    const messages = []
    for (let i = 0; i < count; i++) messages.push({ key: `k${i % 4}`, value: `v${i}` })
    await producer.send({ topic: opts.topic, acks: -1, messages })
  } finally {
    await producer.disconnect()
  }

  const consumer = kafka.consumer({ groupId: opts.group, sessionTimeout: 10000, heartbeatInterval: 1000, maxWaitTimeInMs: 500 })
  await consumer.connect()
  const records = []
  const next = {}
  let reached
  const enough = new Promise(resolve => { reached = resolve })
  try {
    await consumer.subscribe({ topic: opts.topic, fromBeginning: true })
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        records.push(message.value.toString())
        next[partition] = Math.max(next[partition] || 0, Number(message.offset) + 1)
        if (records.length >= count) reached()
      },
    })
    let timer
    const late = new Promise(resolve => { timer = setTimeout(resolve, Number(opts.deadline) * 1000) })
    await Promise.race([enough, late])
    clearTimeout(timer)
    consumer.pause([{ topic: opts.topic }])
    const offsets = Object.entries(next).map(([partition, offset]) =>
      ({ topic: opts.topic, partition: Number(partition), offset: String(offset) }))
    if (offsets.length) await consumer.commitOffsets(offsets)
  } finally {
    await consumer.disconnect()
  }

  const admin2 = kafka.admin()
  await admin2.connect()
  let committed
  try {
    const fetched = await admin2.fetchOffsets({ groupId: opts.group, topics: [opts.topic] })
    committed = Object.fromEntries(fetched[0].partitions.map(p => [p.partition, Math.max(Number(p.offset), 0)]))
  } finally {
    await admin2.disconnect()
  }
  return { created, topics, records, committed }
}

if (opts['check-auth-only'] === '1') {
  checkAuth().then(line => { process.stdout.write(`${line}\n`) })
} else {
  main().then(
    result => { process.stdout.write(`RESULT ${JSON.stringify(result)}\n`) },
    err => { console.error(err); process.stdout.write(`ERROR ${err.name}: ${err.message}\n`); process.exitCode = 1 },
  )
}
